"""Record: typing.NamedTuple for type checkers, the same class built without importing typing at run time.

`canary rollback` is timed from its first line (docs/performance.md), and importing typing costs it 2 ms
before its write, for nothing but the records on its path (an actor, a lock holder, a route's state...).
A class written `class Holder(Record): ...` with annotated fields is, to mypy, a typing.NamedTuple; at run
time Record's metaclass does what typing.NamedTuple's does: collections.namedtuple with the annotated
fields in order and their values as defaults, then the class body's methods, properties and docstring on
it. tests/unit/test_records.py holds the two to the same behaviour.
"""

from __future__ import annotations

import collections

__all__ = ["Record"]

TYPE_CHECKING = False  # not typing's (this module exists not to import it); mypy reads it the same way
if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    _NOT_COPIED = frozenset({"__module__", "__qualname__", "__annotations__", "__dict__", "__weakref__"})

    class _RecordType(type):
        def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, object]) -> type:
            if not bases:  # Record itself
                return super().__new__(mcs, name, bases, namespace)
            if bases != (Record,):
                raise TypeError(f"{name}: a Record derives from Record alone (as a NamedTuple does)")
            fields = list(namespace.get("__annotations__", {}))
            defaults = [namespace[field] for field in fields if field in namespace]
            if [field for field in fields if field in namespace] != fields[len(fields) - len(defaults) :]:
                raise TypeError(f"{name}: a field without a default follows one with a default")
            record = collections.namedtuple(
                name, fields, defaults=defaults, module=str(namespace["__module__"])
            )
            record.__qualname__ = str(namespace.get("__qualname__", name))
            for key, value in namespace.items():
                if key not in _NOT_COPIED and key not in fields:
                    setattr(record, key, value)
            record.__annotations__ = dict(namespace.get("__annotations__", {}))
            return record

    class Record(metaclass=_RecordType):
        """Derive a record class from this (see the module docstring)."""
