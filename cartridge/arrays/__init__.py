"""Numpy arrays in a container: ``write_array``, zero-copy ``view``, ``Dataset``.

An array is a catalog entry whose inline descriptor (``arrayformat.py``) says
its dtype, shape, order and layout, over data stored either as one contiguous
extent of pages (viewable in place) or as N-d chunks (resizable, sparse).
This package is the layer between that storage and numpy; each module does
one job and says why at its top:

``pins``         which generations live views read, held in the reader table
``views``        ndarrays over the mapped file: pinned views, the call-scoped whole
``dataset``      ``Dataset`` and ``Attrs``, the lazy h5py-style handles (and pickling)
``indexing``     numpy's index semantics, translated to the box of storage touched
``gather``       copying a box out of either layout, writing changed chunks back
``reads``        the read operations, each run inside one pinned read call
``shapes``       shapes, chunk grids and dtypes a new array may have
``descriptors``  decoded descriptors, cached by their bytes
``service``      the array operations of a handle, run on a transaction

The import graph inside the package points one way: ``service`` at the top,
``reads``/``views``/``gather`` below it, the pure helpers (``indexing``,
``shapes``, ``descriptors``, ``pins``) at the bottom.  ``dataset`` sits apart:
it reaches the container only through the public methods of the handle it is
given (``read_array``, ``update_array``, ...), which run the service.
"""

from .dataset import Attrs, Dataset
from .pins import ViewPins
from .service import ArrayService, DatasetPlan, plan_dataset
from .shapes import AUTO_CHUNK_BYTES

__all__ = ["AUTO_CHUNK_BYTES", "ArrayService", "Attrs", "Dataset", "DatasetPlan", "ViewPins",
           "plan_dataset"]
