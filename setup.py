"""The package's one C extension; everything else is declared in pyproject.toml.

``watcher._address_filter`` accelerates Bitcoin address matching (see watcher/btc_matching.py).
It is optional: where no C compiler or Python headers are found the build skips it, and the
pure-Python matcher is used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "watcher._address_filter",
            sources=["watcher/_address_filter.c"],
            optional=True,
        )
    ]
)
