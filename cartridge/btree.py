"""A copy-on-write B+tree of byte keys and byte values, stored in pages.

This is the catalog's index: keys compare as raw bytes, so a prefix listing is
one range scan.  Like LMDB's, the tree is never modified in place.  Changing a
leaf copies it and every node on the path to the root into memory (*dirty*
nodes); the pages they replace are handed to the allocator as freed; at commit
``flush`` writes the dirty nodes, children before parents, into newly
allocated pages.  The last durable root therefore always describes a complete,
untouched tree, and a commit is just "write new pages, then point the meta
page at the new root".

Child pointers are ``(page, generation)`` pairs.  The generation is checked
when the child is read (a stale or misdirected page is caught, not trusted)
and keys the cache of decoded nodes: a page number is reused after it is
freed, but within the committed history ``(page, generation)`` names one
immutable page image, so cached nodes never need invalidating, across handles
or processes.  (An attempt that failed before its meta page was written
leaves images no committed history reaches; the pages it used are rewritten
before the next commit can reference them.)

Node layout (see FORMAT.md and ``layout.py``): a leaf holds ``count`` cells
with a u16 offset table; a branch holds ``count`` child refs, a u16 offset
table and ``count - 1`` separator keys.  Splits cut by bytes, not by count,
and an insert at the right edge of the tree (bulk loading in key order)
splits off a nearly empty right node so sequential loads fill pages.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from itertools import accumulate, chain

import numpy as np

from .errors import CorruptionError
from .kernels.btree import FOUND, MISSING, lookup
from .layout import BODY_END, BODY_SIZE, HEADER_SIZE, PAGE_REF_STRUCT, PT_BRANCH, PT_LEAF
from .pager import Pager

ChildRef = tuple[int, int]  # (page, generation) of a clean child

_CAP = BODY_END  # serialized size limit of a node (the trailer is reserved)

#: Deepest tree the compiled lookup descends before giving up (a cycle of
#: corrupt pointers must not loop forever); 10 million entries need ~5 levels.
_MAX_DEPTH = 48

#: Returned by :meth:`NodeStore.find` when the compiled lookup cannot decide.
_SLOW = object()


class Node:
    """One B+tree node, clean (``page`` set, immutable) or dirty (``page`` None).

    A clean leaf read from disk starts *lazy*: it keeps the page image
    (``raw``) and its offset table (``offs``) and ``keys``/``vals`` are only
    built on first access (``__getattr__``), because a point lookup needs
    about log2(n) key slices, not all 2n cells as Python objects.  A leaf
    searched a second time is *hot*: it is decoded once and searched with
    ``bisect`` from then on.
    """

    __slots__ = ("leaf", "keys", "vals", "size", "page", "gen", "raw", "offs", "hot")

    def __init__(self, leaf: bool, keys: list | None, vals: list | None,
                 page: int | None = None, gen: int = 0, size: int | None = None,
                 raw: bytes | None = None, offs: tuple | None = None) -> None:
        self.leaf = leaf
        if keys is not None:
            self.keys = keys
            self.vals = vals
        self.page = page
        self.gen = gen
        self.raw = raw
        self.offs = offs
        self.hot = False
        self.size = _size(leaf, keys, vals) if size is None else size

    def __getattr__(self, name: str) -> list:
        if name in ("keys", "vals") and self.raw is not None:
            offs = self.offs
            cells = list(map(self.raw.__getitem__, map(slice, offs[:-1], offs[1:])))
            self.keys = cells[0::2]
            self.vals = cells[1::2]
            return self.keys if name == "keys" else self.vals
        raise AttributeError(name)

    def find(self, key: bytes) -> bytes | None:
        """Value of ``key`` in this leaf, or None (binary search on the page image)."""
        raw = self.raw
        if raw is not None and self.hot:
            self.keys  # noqa: B018  (materializes keys and vals)
            self.raw = raw = None
        if raw is None:
            keys = self.keys
            i = bisect_left(keys, key)
            return self.vals[i] if i < len(keys) and keys[i] == key else None
        self.hot = True
        offs = self.offs
        lo, hi = 0, len(offs) // 2
        while lo < hi:
            mid = (lo + hi) >> 1
            if raw[offs[2 * mid] : offs[2 * mid + 1]] < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(offs) // 2 and raw[offs[2 * lo] : offs[2 * lo + 1]] == key:
            return raw[offs[2 * lo + 1] : offs[2 * lo + 2]]
        return None

    def copy(self) -> Node:
        """A dirty copy of this node."""
        return Node(self.leaf, self.keys[:], self.vals[:], size=self.size)


def _size(leaf: bool, keys: list, vals: list) -> int:
    if leaf:
        return HEADER_SIZE + 2 * (2 * len(keys) + 1) + sum(map(len, keys)) + sum(map(len, vals))
    return HEADER_SIZE + 18 * len(vals) + sum(map(len, keys))


def _leaf_cell(key: bytes, val: bytes) -> int:
    return len(key) + len(val) + 4


def encode_node(node: Node) -> tuple[int, bytes]:
    """Serialize a node body; return (count, body bytes)."""
    if node.leaf:
        n = len(node.keys)
        cells = list(chain.from_iterable(zip(node.keys, node.vals)))
        offs = accumulate(map(len, cells), initial=HEADER_SIZE + 2 * (2 * n + 1))
        return n, struct.pack(f"<{2 * n + 1}H", *offs) + b"".join(cells)
    n = len(node.vals)
    refs = struct.pack(f"<{2 * n}Q", *chain.from_iterable(node.vals))
    offs = accumulate(map(len, node.keys), initial=HEADER_SIZE + 18 * n)
    return n, refs + struct.pack(f"<{n}H", *offs) + b"".join(node.keys)


def decode_node(page_bytes: bytes, leaf: bool, count: int) -> tuple[list, list, int]:
    """Parse a node page into (keys, values-or-child-refs, serialized size).

    For a leaf, "keys" is the validated offset table and "values" is None:
    leaves are decoded lazily (see :class:`Node`).

    Raises ValueError when the offset table is inconsistent (a page with a
    valid checksum but impossible contents, i.e. written by a buggy or hostile
    writer).
    """
    if leaf:
        offs = struct.unpack_from(f"<{2 * count + 1}H", page_bytes, HEADER_SIZE)
        if offs[0] != HEADER_SIZE + 2 * len(offs) or offs[-1] > BODY_END or (
                list(offs) != sorted(offs)):
            raise ValueError("leaf offset table out of order")
        return offs, None, offs[-1]
    base = HEADER_SIZE
    refs = list(PAGE_REF_STRUCT.iter_unpack(page_bytes[base : base + 16 * count]))
    offs = struct.unpack_from(f"<{count}H", page_bytes, base + 16 * count)
    if not offs or offs[0] != base + 18 * count or offs[-1] > BODY_END or (
            list(offs) != sorted(offs)):
        raise ValueError("branch offset table out of order")
    keys = list(map(page_bytes.__getitem__, map(slice, offs[:-1], offs[1:])))
    return keys, refs, offs[-1]




class NodeStore:
    """Reads clean nodes through the pager, with a FIFO cache of decoded nodes.

    FIFO rather than LRU: a hit then costs one dict lookup and no reordering,
    and an evicted hot node (the root, say) is simply decoded again.
    """

    def __init__(self, pager: Pager, cache_nodes: int = 8192) -> None:
        self.pager = pager
        self.cache: dict[ChildRef, Node] = {}
        self._order: deque[ChildRef] = deque()
        self.cache_nodes = cache_nodes
        self.reads = 0
        self._verified = np.zeros(0, np.uint64)
        #: Sealed (encrypted) pages must be opened in Python: no compiled lookup.
        self.fast = not pager.encrypted

    def find(self, root: ChildRef, key: bytes) -> bytes | None | object:
        """Look ``key`` up in the clean tree at ``root`` with the compiled kernel.

        Returns the value, None when the key is absent, or ``_SLOW`` when the
        kernel met something it does not judge (a damaged page, say); the
        caller then takes the Python path, which raises the precise error.
        """
        image = self.pager.image
        npages = image.shape[0] >> 12
        verified = self._verified
        if verified.shape[0] < npages:
            grown = np.zeros(npages, np.uint64)
            grown[: verified.shape[0]] = verified
            self._verified = verified = grown
        status, off, length = lookup(image, root[0], root[1],
                                     np.frombuffer(key, np.uint8), verified, _MAX_DEPTH)
        if status == FOUND:
            return image[off : off + length].tobytes()
        return None if status == MISSING else _SLOW

    def load(self, ref: ChildRef) -> Node:
        """The decoded, checked node at ``ref``."""
        node = self.cache.get(ref)
        if node is not None:
            return node
        page, gen = ref
        self.reads += 1
        ptype, count, data = self.pager.read_node_page(page, gen, (PT_LEAF, PT_BRANCH))
        try:
            keys, vals, size = decode_node(data, ptype == PT_LEAF, count)
        except (ValueError, struct.error) as exc:
            raise CorruptionError(f"B+tree page {page} is malformed: {exc}", page=page) from None
        if ptype == PT_LEAF:
            node = Node(True, None, None, page, gen, size, data, keys)
        else:
            node = Node(False, keys, vals, page, gen, size)
        self.put(node)
        return node

    def clear(self) -> None:
        """Drop every cached node."""
        self.cache.clear()
        self._order.clear()

    def put(self, node: Node) -> None:
        """Cache a clean node."""
        ref = (node.page, node.gen)
        if ref not in self.cache:
            self._order.append(ref)
        self.cache[ref] = node
        while len(self.cache) > self.cache_nodes:
            self.cache.pop(self._order.popleft(), None)


class BTree:
    """One version of the tree: a durable root plus this transaction's dirty nodes.

    Parameters
    ----------
    store:
        Where clean nodes come from.
    root:
        The durable root ref, or None for an empty tree.
    free:
        Called with ``(page, 1, generation)`` when copy-on-write replaces a
        clean node.
    """

    def __init__(self, store: NodeStore, root: ChildRef | None,
                 free: Callable[[int, int, int], None] | None = None) -> None:
        self.store = store
        self.root: Node | ChildRef | None = root
        self.free = free

    # ---------------------------------------------------------------- reading
    def _node(self, ref: Node | ChildRef) -> Node:
        return ref if isinstance(ref, Node) else self.store.load(ref)

    def get(self, key: bytes) -> bytes | None:
        """Value stored under ``key``, or None."""
        ref = self.root
        if ref is None:
            return None
        if type(ref) is tuple and self.store.fast:
            found = self.store.find(ref, key)
            if found is not _SLOW:
                return found
        cache = self.store.cache
        load = self.store.load
        node = ref if type(ref) is Node else (cache.get(ref) or load(ref))
        while not node.leaf:
            ref = node.vals[bisect_right(node.keys, key)]
            node = ref if type(ref) is Node else (cache.get(ref) or load(ref))
        return node.find(key)

    def items(self, start: bytes = b"", end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(key, value)`` for ``start <= key < end`` in key order."""
        if self.root is None:
            return
        stack: list[tuple[Node, int]] = []
        node = self._node(self.root)
        while not node.leaf:
            i = bisect_right(node.keys, start)
            stack.append((node, i))
            node = self._node(node.vals[i])
        i = bisect_left(node.keys, start)
        while True:
            keys, vals = node.keys, node.vals
            for j in range(i, len(keys)):
                k = keys[j]
                if end is not None and k >= end:
                    return
                yield k, vals[j]
            while stack:
                parent, i = stack.pop()
                if i + 1 < len(parent.vals):
                    stack.append((parent, i + 1))
                    node = self._node(parent.vals[i + 1])
                    while not node.leaf:
                        stack.append((node, 0))
                        node = self._node(node.vals[0])
                    i = 0
                    break
            else:
                return

    def walk(self, visit: Callable[[int, int, Node, int], None]) -> None:
        """Call ``visit(page, gen, node, depth)`` for every clean node, pre-order."""
        if self.root is None or isinstance(self.root, Node):
            return
        todo = [(self.root, 0)]
        while todo:
            ref, depth = todo.pop()
            node = self.store.load(ref)
            visit(ref[0], ref[1], node, depth)
            if not node.leaf:
                todo.extend((c, depth + 1) for c in reversed(node.vals))

    # ---------------------------------------------------------------- writing
    def _cow(self, ref: Node | ChildRef) -> Node:
        if isinstance(ref, Node):
            return ref
        node = self.store.load(ref).copy()
        if self.free is not None:
            self.free(ref[0], 1, ref[1])
        return node

    def touch(self, key: bytes) -> None:
        """Copy-on-write the root-to-leaf path of ``key`` (compaction moves nodes so)."""
        self._descend(key)

    def _descend(self, key: bytes) -> tuple[Node, list[tuple[Node, int]]]:
        """Copy-on-write the path to the leaf for ``key``; return (leaf, path)."""
        if self.root is None:
            self.root = Node(True, [], [])
        node = self._cow(self.root)
        self.root = node
        path: list[tuple[Node, int]] = []
        while not node.leaf:
            i = bisect_right(node.keys, key)
            child = self._cow(node.vals[i])
            node.vals[i] = child
            path.append((node, i))
            node = child
        return node, path

    def put(self, key: bytes, val: bytes) -> None:
        """Insert or replace ``key``."""
        leaf, path = self._descend(key)
        i = bisect_left(leaf.keys, key)
        if i < len(leaf.keys) and leaf.keys[i] == key:
            leaf.size += len(val) - len(leaf.vals[i])
            leaf.vals[i] = val
        else:
            leaf.keys.insert(i, key)
            leaf.vals.insert(i, val)
            leaf.size += _leaf_cell(key, val)
        if leaf.size > _CAP:
            self._split(leaf, path, appending=i == len(leaf.keys) - 1)

    def _split(self, node: Node, path: list[tuple[Node, int]], appending: bool) -> None:
        while node.size > _CAP:
            right, sep = _split_node(node, appending)
            if path:
                parent, i = path.pop()
                parent.keys.insert(i, sep)
                parent.vals.insert(i + 1, right)
                parent.size += len(sep) + 18
                appending = appending and i == len(parent.vals) - 2
                if right.size > _CAP:
                    path.append((parent, i + 1))
                    node = right
                    continue
                node = parent
            else:
                self.root = Node(False, [sep], [node, right])
                if right.size > _CAP:  # a huge cell landed on the right: split it too
                    path.append((self.root, 1))
                    node = right
                    continue
                node = self.root

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; return whether it was present."""
        if self.get(key) is None:
            return False
        leaf, path = self._descend(key)
        i = bisect_left(leaf.keys, key)
        leaf.size -= _leaf_cell(key, leaf.vals[i])
        del leaf.keys[i]
        del leaf.vals[i]
        self._rebalance(leaf, path)
        return True

    def _rebalance(self, node: Node, path: list[tuple[Node, int]]) -> None:
        while path and node.size < _CAP // 4:
            parent, i = path.pop()
            if not (node.keys if node.leaf else node.vals):
                del parent.vals[i]
                if i < len(parent.keys):
                    sep = parent.keys.pop(i)
                else:
                    sep = parent.keys.pop(i - 1) if parent.keys else b""
                parent.size -= len(sep) + 18
            else:
                j = i - 1 if i > 0 else i + 1
                if j >= len(parent.vals):
                    node = parent
                    continue
                lo = min(i, j)
                left = self._cow(parent.vals[lo])
                right = self._cow(parent.vals[lo + 1])
                parent.vals[lo], parent.vals[lo + 1] = left, right
                sep = parent.keys[lo]
                merged = _merge(left, right, sep)
                if merged.size <= _CAP:
                    parent.vals[lo] = merged
                    del parent.vals[lo + 1]
                    del parent.keys[lo]
                    parent.size -= len(sep) + 18
            node = parent
        while isinstance(self.root, Node) and not self.root.leaf and len(self.root.vals) == 1:
            self.root = self.root.vals[0]
        if isinstance(self.root, Node) and self.root.leaf and not self.root.keys:
            self.root = None

    def flush(self, alloc: Callable[[int], list[int]], write: Callable[[int, Node], None],
              generation: int) -> tuple[ChildRef | None, int, list[int]]:
        """Write every dirty node; return (root ref, depth, pages written)."""
        if self.root is None:
            return None, 0, []
        if not isinstance(self.root, Node):
            return self.root, self._depth(), []
        order: list[Node] = []
        todo: list[tuple[Node, bool]] = [(self.root, False)]
        while todo:
            node, expanded = todo.pop()
            if expanded or node.leaf:
                order.append(node)
                continue
            todo.append((node, True))
            todo.extend((c, False) for c in node.vals if isinstance(c, Node))
        pages = alloc(len(order))
        for node, page in zip(order, pages):
            if not node.leaf:
                node.vals = [c if not isinstance(c, Node) else (c.page, c.gen) for c in node.vals]
            node.page, node.gen = page, generation
            write(page, node)
            self.store.put(node)
        root = self.root
        self.root = (root.page, root.gen)
        return self.root, self._depth(), pages

    def _depth(self) -> int:
        depth = 0
        node = self._node(self.root) if self.root is not None else None
        while node is not None and not node.leaf:
            depth += 1
            node = self._node(node.vals[0])
        return depth


def _split_node(node: Node, appending: bool) -> tuple[Node, bytes]:
    """Cut ``node`` in two by bytes; ``node`` keeps the left half.

    Returns the new right node and the separator key for the parent.
    """
    keys, vals = node.keys, node.vals
    if node.leaf:
        sizes = [_leaf_cell(k, v) for k, v in zip(keys, vals)]
        if appending:
            m = len(keys) - 1
            while m > 1 and HEADER_SIZE + 2 + sum(sizes[:m]) > _CAP:
                m -= 1
        else:
            total = sum(sizes)
            acc, m = 0, 0
            while m < len(keys) - 1 and acc + sizes[m] <= total / 2:
                acc += sizes[m]
                m += 1
            m = max(1, m)
            while m > 1 and HEADER_SIZE + 2 + sum(sizes[:m]) > _CAP:
                m -= 1
        right = Node(True, keys[m:], vals[m:])
        node.keys, node.vals = keys[:m], vals[:m]
        node.size = _size(True, node.keys, node.vals)
        return right, right.keys[0]
    n = len(keys)
    if appending:
        m = n - 1
    else:
        total = sum(len(k) + 18 for k in keys)
        acc, m = 0, 0
        while m < n - 1 and acc + len(keys[m]) + 18 <= total / 2:
            acc += len(keys[m]) + 18
            m += 1
        m = max(1, m)
    sep = keys[m]
    right = Node(False, keys[m + 1:], vals[m + 1:])
    node.keys, node.vals = keys[:m], vals[: m + 1]
    node.size = _size(False, node.keys, node.vals)
    return right, sep


def _merge(left: Node, right: Node, sep: bytes) -> Node:
    if left.leaf:
        return Node(True, left.keys + right.keys, left.vals + right.vals)
    return Node(False, left.keys + [sep] + right.keys, left.vals + right.vals)


assert BODY_SIZE > 2 * 2004
