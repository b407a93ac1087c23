#!/usr/bin/env node
// A bcoin regtest full node for the tests and the demo.
//
// Usage: node bcoin-launcher.js --prefix=DIR --http-host=127.0.0.1 --http-port=P
//          --api-key=KEY --wallet-http-host=127.0.0.1 --wallet-http-port=W --index-tx=true
//          [--listen=true --port=N]   (accept peers, for two-node reorg set-ups)
//
// What it changes compared with bcoin's own bin/node:
// 1. the network is set to regtest before anything else is loaded, or the wallet RPC hands
//    out mainnet addresses;
// 2. chain and mempool live in memory, no worker processes, and no P2P listener unless
//    --listen=true is given;
// 3. Mempool.prototype._removeBlock no longer returns early on an empty mempool: bcoin 1.0.2
//    otherwise loses the transactions of a disconnected block when the mempool was empty;
// 4. a test-only RPC, `evictmempoolentry <txid>`, drops a transaction from the mempool, which
//    is how a "dropped" transaction is made on demand;
// 5. a listening node does not look up its external IP: bcoin would ask public DNS servers,
//    and test nodes talk to loopback only.
'use strict';

const bcoin = require('bcoin');

bcoin.set('regtest');

const FullNode = require('bcoin/lib/node/fullnode');
const Mempool = require('bcoin/lib/mempool/mempool');
const Pool = require('bcoin/lib/net/pool');
const WalletPlugin = require('bcoin/lib/wallet/plugin');
const { RPCError } = require('bweb');

// Copy of bcoin 1.0.2's Mempool#_removeBlock without the early return on an empty map.
Mempool.prototype._removeBlock = async function _removeBlock(block, txs) {
  let total = 0;

  for (let i = 1; i < txs.length; i++) {
    const tx = txs[i];
    const hash = tx.hash('hex');

    if (this.hasEntry(hash))
      continue;

    try {
      await this.insertTX(tx, -1);
      total++;
    } catch (e) {
      this.emit('error', e);
      continue;
    }

    this.emit('unconfirmed', tx, block);
  }

  this.rejects.reset();
  this.cache.sync(block.prevBlock);
  await this.cache.flush();
  this.tip = block.prevBlock;

  if (total > 0) {
    this.logger.debug('Added %d txs back into the mempool for block %d.',
      total, block.height);
  }
};

Pool.prototype.discoverExternal = async function discoverExternal() {};

function flag(name) {
  const prefix = `--${name}=`;
  const arg = process.argv.find(a => a.startsWith(prefix));
  return arg === undefined ? undefined : arg.slice(prefix.length);
}

const node = new FullNode({
  network: 'regtest',
  config: true,
  argv: true,
  env: false,
  logFile: false,
  logConsole: true,
  logLevel: flag('log-level') || 'warning',
  memory: true,
  workers: false,
  listen: flag('listen') === 'true',
  loader: require
});

node.use(WalletPlugin);

const INVALID_PARAMETER = -8;
const INVALID_ADDRESS_OR_KEY = -5;

node.rpc.add('evictmempoolentry', async (args) => {
  if (args.length !== 1 || typeof args[0] !== 'string')
    throw new RPCError(INVALID_PARAMETER, 'evictmempoolentry "txid"');
  const hash = Buffer.from(args[0], 'hex').reverse().toString('hex');
  const entry = node.mempool.getEntry(hash);
  if (!entry)
    throw new RPCError(INVALID_ADDRESS_OR_KEY, 'Transaction not in mempool.');
  node.mempool.evictEntry(entry);
  return true;
});

process.on('unhandledRejection', (err) => {
  throw err;
});

function shutdown() {
  node.close().then(() => process.exit(0), (err) => {
    console.error(err.stack);
    process.exit(1);
  });
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

(async () => {
  await node.ensure();
  await node.open();
  await node.connect();
  node.startSync();
})().catch((err) => {
  console.error(err.stack);
  process.exit(1);
});
