/*
 * watcher._address_filter: a cache-friendly "may this address be watched?" filter, and a scan
 * of a whole block's transactions through it.
 *
 * Matching a block asks one membership question per output and per input. With a large watch
 * list every question is a memory access, because no exact structure for a million addresses
 * fits in the CPU caches, and from Python each question is also a call. This module answers the
 * question from two blocked Bloom filters keyed by Python's own (cached) hash of the address:
 *
 *   - level 1: 4 bits per address, 3 bits set in one 64-byte line; about 0.5 MB per million
 *     addresses, so it mostly stays in the L2 cache; lets about 13% of strangers through;
 *   - level 2: 16 bits per address, asked only when level 1 says maybe; together they let
 *     about 0.1% of strangers through.
 *
 * A "no" is certain: an address equal to a watched one has the same hash. A "yes" only means
 * "ask the exact set". The filter is rebuilt for every process (Python salts string hashes).
 *
 * AddressFilter.candidates(txs) walks a block's transactions (models.BtcTx: ``inputs`` and
 * ``outputs`` tuples of objects with an ``address`` that is a str or None) in C, prefetching the
 * filter lines a few addresses ahead so the memory accesses overlap, and returns which
 * transactions may touch a watched address. It stops at the first transaction with an input
 * whose address is unknown: such an input can only be matched by its outpoint, which the
 * Python matcher looks up, so that transaction and the rest of the block are left to it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define LINE_BYTES 64
#define LINE_WORDS (LINE_BYTES / 8)
#define LINE_BITS (LINE_BYTES * 8)
#define BITS_PER_PROBE 9 /* log2(LINE_BITS) */
#define PROBES 3
#define LEVEL1_BITS_PER_ADDRESS 4
#define LEVEL2_BITS_PER_ADDRESS 16
#define LEVEL2_SEED 0x9e3779b97f4a7c15ULL
/* How many addresses ahead of the one being answered its filter line is fetched. */
#define LOOKAHEAD 16

typedef struct {
    void *raw;       /* what was allocated; ``lines`` is its first 64-byte aligned address */
    uint64_t *lines; /* nlines * LINE_WORDS words */
    uint64_t nlines;
    uint64_t seed;
} Level;

typedef struct {
    PyObject_HEAD
    Level level1;
    Level level2;
    Py_ssize_t count;
} AddressFilter;

static PyObject *str_inputs, *str_outputs, *str_address;

/* splitmix64's finaliser: Python's hash of a str is already well mixed, but the hashes of
   small ints are the ints themselves, and the two levels must not share bit positions. */
static inline uint64_t mix(uint64_t h) {
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static inline uint64_t *line_of(const Level *level, uint64_t m) {
    /* Lemire's multiply-shift maps the low 32 bits onto [0, nlines) without a division. */
    return level->lines + (((m & 0xffffffffULL) * level->nlines) >> 32) * LINE_WORDS;
}

static inline void level_add(Level *level, uint64_t h) {
    uint64_t m = mix(h ^ level->seed);
    uint64_t *line = line_of(level, m);
    uint64_t bits = m >> 32;
    for (int i = 0; i < PROBES; i++, bits >>= BITS_PER_PROBE) {
        unsigned bit = (unsigned)(bits & (LINE_BITS - 1));
        line[bit >> 6] |= 1ULL << (bit & 63);
    }
}

static inline int level_has(const Level *level, uint64_t m) {
    const uint64_t *line = line_of(level, m);
    uint64_t bits = m >> 32;
    for (int i = 0; i < PROBES; i++, bits >>= BITS_PER_PROBE) {
        unsigned bit = (unsigned)(bits & (LINE_BITS - 1));
        if (!(line[bit >> 6] & (1ULL << (bit & 63)))) {
            return 0;
        }
    }
    return 1;
}

static inline int filter_has(const AddressFilter *f, uint64_t h) {
    return level_has(&f->level1, mix(h ^ f->level1.seed)) &&
           level_has(&f->level2, mix(h ^ f->level2.seed));
}

static int level_alloc(Level *level, Py_ssize_t count, uint64_t bits_per_address, uint64_t seed) {
    uint64_t nlines = ((uint64_t)count * bits_per_address + LINE_BITS - 1) / LINE_BITS;
    if (nlines == 0) {
        nlines = 1;
    }
    if (nlines > 0xffffffffULL) {
        PyErr_SetString(PyExc_OverflowError, "too many addresses for one filter");
        return -1;
    }
    level->raw = PyMem_Calloc(nlines * LINE_BYTES + LINE_BYTES, 1);
    if (level->raw == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    uintptr_t start = ((uintptr_t)level->raw + LINE_BYTES - 1) & ~(uintptr_t)(LINE_BYTES - 1);
    level->lines = (uint64_t *)start;
    level->nlines = nlines;
    level->seed = seed;
    return 0;
}

static void level_free(Level *level) {
    PyMem_Free(level->raw);
    level->raw = NULL;
    level->lines = NULL;
    level->nlines = 0;
}

static PyObject *AddressFilter_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"addresses", NULL};
    PyObject *addresses;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:AddressFilter", keywords, &addresses)) {
        return NULL;
    }
    PyObject *items = PySequence_Tuple(addresses); /* a copy: hashing may run Python code */
    if (items == NULL) {
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(items);
    AddressFilter *self = (AddressFilter *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    self->count = count;
    if (level_alloc(&self->level1, count, LEVEL1_BITS_PER_ADDRESS, 0) < 0 ||
        level_alloc(&self->level2, count, LEVEL2_BITS_PER_ADDRESS, LEVEL2_SEED) < 0) {
        Py_DECREF(items);
        Py_DECREF(self);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_hash_t h = PyObject_Hash(PyTuple_GET_ITEM(items, i));
        if (h == -1 && PyErr_Occurred()) {
            Py_DECREF(items);
            Py_DECREF(self);
            return NULL;
        }
        level_add(&self->level1, (uint64_t)h);
        level_add(&self->level2, (uint64_t)h);
    }
    Py_DECREF(items);
    return (PyObject *)self;
}

static void AddressFilter_dealloc(PyObject *op) {
    AddressFilter *self = (AddressFilter *)op;
    level_free(&self->level1);
    level_free(&self->level2);
    Py_TYPE(op)->tp_free(op);
}

static int AddressFilter_contains(PyObject *op, PyObject *key) {
    Py_hash_t h = PyObject_Hash(key);
    if (h == -1 && PyErr_Occurred()) {
        return -1;
    }
    return filter_has((AddressFilter *)op, (uint64_t)h);
}

static Py_ssize_t AddressFilter_len(PyObject *op) {
    return ((AddressFilter *)op)->count;
}

/* One address waiting for its level-1 line, which was prefetched when it was queued. */
typedef struct {
    uint64_t hash;
    Py_ssize_t tx;
} Queued;

typedef struct {
    const AddressFilter *filter;
    Queued ring[LOOKAHEAD];
    int head;
    int used;
    Py_ssize_t last; /* the last transaction index appended to hits */
    PyObject *hits;
} Scan;

static int scan_hit(Scan *scan, Py_ssize_t tx) {
    PyObject *index = PyLong_FromSsize_t(tx);
    if (index == NULL) {
        return -1;
    }
    int failed = PyList_Append(scan->hits, index);
    Py_DECREF(index);
    scan->last = tx;
    return failed;
}

/* Answer the oldest queued address. Transactions at or after ``stop`` are not reported. */
static int scan_answer(Scan *scan, Py_ssize_t stop) {
    Queued q = scan->ring[scan->head];
    scan->head = (scan->head + 1) % LOOKAHEAD;
    scan->used--;
    if (q.tx > scan->last && q.tx < stop && filter_has(scan->filter, q.hash)) {
        return scan_hit(scan, q.tx);
    }
    return 0;
}

static int scan_queue(Scan *scan, uint64_t hash, Py_ssize_t tx) {
    if (scan->used == LOOKAHEAD && scan_answer(scan, PY_SSIZE_T_MAX) < 0) {
        return -1;
    }
    const Level *level1 = &scan->filter->level1;
    __builtin_prefetch(line_of(level1, mix(hash ^ level1->seed)));
    scan->ring[(scan->head + scan->used) % LOOKAHEAD] = (Queued){hash, tx};
    scan->used++;
    return 0;
}

/* Queue the addresses of ``parts`` (a tuple of inputs or outputs) of transaction ``tx``.
   An output without an address pays no one and is skipped; at an input without one the
   transaction cannot be judged here: returns 1 there. Otherwise 0, or -1 on an error. */
static int scan_parts(Scan *scan, PyObject *parts, Py_ssize_t tx, int are_inputs) {
    if (!PyTuple_Check(parts)) {
        PyErr_Format(PyExc_TypeError, "transaction %zd: inputs and outputs must be tuples", tx);
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(parts);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *address = PyObject_GetAttr(PyTuple_GET_ITEM(parts, j), str_address);
        if (address == NULL) {
            return -1;
        }
        if (address == Py_None) {
            Py_DECREF(address);
            if (are_inputs) {
                return 1;
            }
            continue;
        }
        Py_hash_t h = PyObject_Hash(address);
        Py_DECREF(address);
        if ((h == -1 && PyErr_Occurred()) || scan_queue(scan, (uint64_t)h, tx) < 0) {
            return -1;
        }
    }
    return 0;
}

static int scan_tx(Scan *scan, PyObject *tx, Py_ssize_t i) {
    PyObject *inputs = PyObject_GetAttr(tx, str_inputs);
    if (inputs == NULL) {
        return -1;
    }
    int found = scan_parts(scan, inputs, i, 1);
    Py_DECREF(inputs);
    if (found != 0) {
        return found;
    }
    PyObject *outputs = PyObject_GetAttr(tx, str_outputs);
    if (outputs == NULL) {
        return -1;
    }
    found = scan_parts(scan, outputs, i, 0);
    Py_DECREF(outputs);
    return found;
}

static PyObject *AddressFilter_candidates(PyObject *op, PyObject *txs) {
    PyObject *block = PySequence_Tuple(txs); /* a copy: attribute access may run Python code */
    if (block == NULL) {
        return NULL;
    }
    Scan scan = {.filter = (AddressFilter *)op, .last = -1, .hits = PyList_New(0)};
    if (scan.hits == NULL) {
        Py_DECREF(block);
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(block);
    Py_ssize_t stop = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        int found = scan_tx(&scan, PyTuple_GET_ITEM(block, i), i);
        if (found < 0) {
            goto error;
        }
        if (found > 0) {
            stop = i;
            break;
        }
    }
    while (scan.used > 0) {
        if (scan_answer(&scan, stop) < 0) {
            goto error;
        }
    }
    /* With more than LOOKAHEAD inputs, the stopping transaction may have been reported
       before its input without an address was reached. */
    Py_ssize_t reported = PyList_GET_SIZE(scan.hits);
    if (scan.last >= stop && PyList_SetSlice(scan.hits, reported - 1, reported, NULL) < 0) {
        goto error;
    }
    Py_DECREF(block);
    return Py_BuildValue("(Nn)", scan.hits, stop);
error:
    Py_DECREF(block);
    Py_DECREF(scan.hits);
    return NULL;
}

PyDoc_STRVAR(candidates_doc,
             "candidates(txs, /)\n--\n\n"
             "(hits, stop): the indices, ascending, of the transactions before ``stop`` that may\n"
             "pay or spend a watched address, and the index of the first transaction with an\n"
             "input whose address is unknown (``len(txs)`` if none has one).");

static PyMethodDef AddressFilter_methods[] = {
    {"candidates", AddressFilter_candidates, METH_O, candidates_doc},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods AddressFilter_as_sequence = {
    .sq_length = AddressFilter_len,
    .sq_contains = AddressFilter_contains,
};

PyDoc_STRVAR(AddressFilter_doc,
             "AddressFilter(addresses)\n--\n\n"
             "May an address be one of ``addresses``? ``in`` answers False only for addresses\n"
             "that are not (about 0.1% of strangers are let through).");

static PyTypeObject AddressFilterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "watcher._address_filter.AddressFilter",
    .tp_basicsize = sizeof(AddressFilter),
    .tp_dealloc = AddressFilter_dealloc,
    .tp_as_sequence = &AddressFilter_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = AddressFilter_doc,
    .tp_methods = AddressFilter_methods,
    .tp_new = AddressFilter_new,
};

static struct PyModuleDef address_filter_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "watcher._address_filter",
    .m_doc = "A blocked Bloom filter of watched addresses, and a prefetching scan of a block.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__address_filter(void) {
    str_inputs = PyUnicode_InternFromString("inputs");
    str_outputs = PyUnicode_InternFromString("outputs");
    str_address = PyUnicode_InternFromString("address");
    if (str_inputs == NULL || str_outputs == NULL || str_address == NULL ||
        PyType_Ready(&AddressFilterType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&address_filter_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "AddressFilter", (PyObject *)&AddressFilterType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
