"""yilian (医联): the shared appointment-slot pool (号源池) of a regional care network.

Open an :class:`Engine` and either call the source's interfaces by name
(``engine.call("pre-book-slot", {...})`` returns the answer's ``data``) or use
the typed hot path (``slot``, ``hold``, ``confirm``, ``release``,
``availability``). Failures raise :class:`YilianError` subclasses, one per
error family, carrying ``.code``, ``.numeric_code`` and ``.message_zh``;
:class:`ErrorCode` lists every code (``ErrorCode[err.code].family``), and
``ErrorCodeName`` is the ``Literal`` type of the codes.

>>> import yilian
>>> with yilian.Engine() as engine:
...     "sync-schedule" in yilian.commands()
True
"""

from ._codes import ErrorCode, ErrorCodeName, ErrorFamilyName
from ._native import (
    Availability,
    BindingError,
    ConflictError,
    Engine,
    ForbiddenError,
    Hold,
    IdempotencyError,
    InputError,
    InternalError,
    LabTranslator,
    NotFoundError,
    SlotHandle,
    StateError,
    StorageError,
    YilianError,
    __version__,
    commands,
    error_codes,
)

__all__ = [
    "Availability",
    "BindingError",
    "ConflictError",
    "Engine",
    "ErrorCode",
    "ErrorCodeName",
    "ErrorFamilyName",
    "ForbiddenError",
    "Hold",
    "IdempotencyError",
    "InputError",
    "InternalError",
    "LabTranslator",
    "NotFoundError",
    "SlotHandle",
    "StateError",
    "StorageError",
    "YilianError",
    "__version__",
    "commands",
    "error_codes",
]
