"""Numba kernels for Cartridge's hot loops.

This subpackage holds the small, self-contained compiled kernels that the
storage engine calls on its hot paths:

``checksum``
    Bit-exact XXH64 (xxHash, 64-bit) over ``uint8`` arrays, plus batched
    per-page and per-chunk checksumming.
``bitmap``
    The page allocator's free-space bitmap: range set/clear, population
    counts, first-fit / best-fit searches and fragmentation statistics.

Every kernel is a free function over ndarrays and scalars, compiled with
``numba.njit(nogil=True, cache=True)``, accepts read-only inputs, and has a
plain-Python ``<kernel>_ref`` twin next to it that serves as its executable
specification in the tests.  Import the submodules explicitly
(``from cartridge.kernels import checksum, bitmap``); nothing is re-exported
here so that importing the package stays cheap.
"""
