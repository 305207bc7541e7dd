"""Turn a database failure into the caller's own "unavailable" error, with a one-line reason."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from sqlalchemy.exc import SQLAlchemyError

T = TypeVar("T")


def unavailable_as(error: type[Exception], what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: SQLAlchemy errors inside become ``error("<what> (<ErrorType>: <first line>)")``."""

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except SQLAlchemyError as exc:
                first = str(exc).splitlines()[0][:160] if str(exc) else ""
                raise error(f"{what} ({type(exc).__name__}: {first})") from exc

        return wrapper

    return decorate
