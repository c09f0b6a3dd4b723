"""canary.records.Record: the same class typing.NamedTuple makes, built without importing typing."""

import pickle
import subprocess
import sys
from typing import NamedTuple

import pytest

from canary.records import Record


class Typed(NamedTuple):
    """A release's lock holder, say."""

    token: str
    pid: int
    command: str = "rollback"
    tags: tuple[str, ...] = ()

    @property
    def who(self) -> str:
        return f"{self.pid} {self.command}"

    def with_pid(self, pid: int) -> "Typed":
        return self._replace(pid=pid)

    @classmethod
    def parse(cls, text: str) -> "Typed":
        token, pid = text.split(":")
        return cls(token, int(pid))


class Plain(Record):
    """A release's lock holder, say."""

    token: str
    pid: int
    command: str = "rollback"
    tags: tuple[str, ...] = ()

    @property
    def who(self) -> str:
        return f"{self.pid} {self.command}"

    def with_pid(self, pid: int) -> "Plain":
        return self._replace(pid=pid)

    @classmethod
    def parse(cls, text: str) -> "Plain":
        token, pid = text.split(":")
        return cls(token, int(pid))


def test_a_record_behaves_as_the_named_tuple() -> None:
    for cls in (Typed, Plain):
        one = cls("t", 7)
        assert isinstance(one, tuple) and tuple(one) == ("t", 7, "rollback", ())
        assert cls._fields == ("token", "pid", "command", "tags")
        assert cls._field_defaults == {"command": "rollback", "tags": ()}
        assert one._asdict() == {"token": "t", "pid": 7, "command": "rollback", "tags": ()}
        assert one.who == "7 rollback" and one.with_pid(8).pid == 8 and cls.parse("a:3") == cls("a", 3)
        assert one == cls(token="t", pid=7) and one != cls("t", 8) and hash(one) == hash(cls("t", 7))
        assert pickle.loads(pickle.dumps(one)) == one
        with pytest.raises(AttributeError):
            one.pid = 9  # type: ignore[misc]
        with pytest.raises(TypeError):
            cls("t")  # type: ignore[call-arg]
    assert repr(Plain("t", 7)) == repr(Typed("t", 7)).replace("Typed", "Plain")
    assert Plain.__doc__ == Typed.__doc__
    assert (Plain.__module__, Plain.__qualname__) == (__name__, "Plain")
    assert list(Plain.__annotations__) == list(Typed.__annotations__)


def test_what_a_named_tuple_refuses_a_record_refuses() -> None:
    with pytest.raises(TypeError, match="without a default follows"):

        class Unordered(Record):
            first: int = 0
            second: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="derives from Record alone"):

        class Mixed(Record, dict[str, int]):  # type: ignore[misc]
            extra: int = 0


def test_records_do_not_import_typing() -> None:
    code = "import sys, canary.records; print('typing' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
