"""Every use of another library's internals, one module per library.

Each function or class here says why the public API is not enough, the version it was checked on, and
when it can go. ``tests/unit/_compat/`` fails loudly when a library changes what these rely on, and
``tests/unit/test_structure.py`` fails when a module outside this package uses a library's internals.
"""
