"""The native module of yilian (PyO3). Import from ``yilian`` instead."""

from types import TracebackType
from typing import Any, Dict, List, Optional, Tuple, Type, Union, final

from ._codes import ErrorCodeName, ErrorFamilyName

__all__ = [
    "__version__",
    "Engine",
    "SlotHandle",
    "Hold",
    "Availability",
    "LabTranslator",
    "YilianError",
    "InputError",
    "NotFoundError",
    "ConflictError",
    "StateError",
    "ForbiddenError",
    "IdempotencyError",
    "StorageError",
    "BindingError",
    "InternalError",
    "error_codes",
    "commands",
    "_raise_code",
]

__version__: str
"""The version of the yilian core this module was built from."""

_Request = Union[Dict[str, Any], str, bytes, bytearray, None]

@final
class Engine:
    """The engine: the shared slot pool (号源池) of one process.

    ``Engine(config=None)`` opens it from a dict or JSON text (None means ``{}``:
    in memory, acting as the platform; ``{"data_dir": ...}``: durable,
    recovered as it was). Thread-safe: share one engine between threads; every
    call releases the GIL while the core works. Use it as a context manager or
    call ``close()``.
    """

    def __new__(cls, config: _Request = None) -> "Engine": ...
    def close(self) -> None:
        """Closes the engine: waits for calls in progress on other threads,
        flushes the store and frees the data directory. Idempotent; later calls
        raise StorageError with code ENGINE_CLOSED."""
    @property
    def closed(self) -> bool:
        """True once close() has been called."""
    def __enter__(self) -> "Engine":
        """Returns the engine itself."""
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]] = None,
        exc_value: Optional[BaseException] = None,
        traceback: Optional[TracebackType] = None,
    ) -> None:
        """Closes the engine; exceptions propagate."""
    def call(self, command: str, request: _Request = None, *, principal: _Request = None) -> Any:
        """Calls a command of the source's interfaces (e.g. "pre-book-slot")
        with a dict or JSON text request (None means {}), and returns the
        answer's ``data`` as Python objects. ``principal`` states who acts,
        e.g. ``{"role": "community", "institution_id": "C001"}`` (None: the
        engine's own); a request naming another institution raises
        ForbiddenError. Raises a YilianError subclass on failure."""
    def slot(self, slot_id: str) -> "SlotHandle":
        """Resolves a slot id once, for hold() and availability()."""
    def hold(
        self,
        slot: "SlotHandle",
        patient_id: str,
        *,
        request_id: Optional[str] = None,
        clinic_id: Optional[str] = None,
        priority: Optional[str] = None,
    ) -> "Hold":
        """Holds one place of ``slot`` for a patient until the hold
        time-to-live passes. ``request_id`` makes a retry return the same hold;
        ``priority`` is one of normal, referral, special_needs, critical,
        surgery."""
    def confirm(self, booking_id: int, request_id: Optional[str] = None) -> None:
        """Confirms a hold; the booking is then kept until cancelled."""
    def release(self, booking_id: int, request_id: Optional[str] = None) -> None:
        """Releases a hold or cancels a booking; the place returns to the pool
        (or to the first waiter)."""
    def availability(self, slot: "SlotHandle") -> "Availability":
        """The places of ``slot`` now. Never changes state."""
    def lab_translator(self, institution_id: str, lab_id: Optional[str] = None) -> "LabTranslator":
        """Compiles the translation of lab results into ``institution_id``'s
        sub-items (委托检验报告): standard sub-item codes, and the lab's own
        codes when ``lab_id`` is given. Compile again after the mapping changes."""
    def check_invariants(self) -> None:
        """Checks the pool's invariants; raises InternalError if broken."""


@final
class LabTranslator:
    """A compiled translation from the codes a lab reports in (standard
    sub-item codes, and the lab's own sub-item codes when made with
    ``lab_id``) to one institution's sub-item codes. Made by
    ``Engine.lab_translator()``; a snapshot of the mapping at that moment."""

    def translate(
        self,
        results: Union[Dict[str, Any], List[Tuple[str, Any]], List[Dict[str, Any]]],
        *,
        strict: bool = True,
    ) -> Dict[str, Any]:
        """Translates results into ``{institution sub-item code: value}``.

        ``results`` is a dict ``{lab code: value}``, or a list of
        ``(code, value)`` pairs or of ``{"item_code": ..., "value": ...}``
        dicts. Values are passed through unchanged. A code the institution has
        not mapped raises ConflictError (LAB_ITEM_UNMAPPED) unless
        ``strict=False``, which leaves it out."""
    def lookup(self, code: str) -> Optional[Tuple[str, str, str, str, str]]:
        """``(institution code, institution name, standard code, unit, reference
        range)`` of a lab code, or None when the institution has not mapped it."""
    @property
    def institution_id(self) -> str:
        """The institution whose sub-items results are translated into."""
    @property
    def lab_id(self) -> Optional[str]:
        """The lab whose own codes are understood, if any."""
    def __len__(self) -> int:
        """How many codes are understood."""

@final
class SlotHandle:
    """A slot resolved once by Engine.slot(), for the typed hot path."""

    @property
    def slot_id(self) -> str:
        """The slot id it was resolved from."""
    @property
    def index(self) -> int:
        """The slot's index in its engine (valid only for that engine)."""

@final
class Hold:
    """A hold on one place (预占), returned by Engine.hold(): confirm or release
    it before ``expires_ms``."""

    @property
    def booking_id(self) -> int:
        """The booking's number, for confirm() and release()."""
    @property
    def booking_ref(self) -> str:
        """The booking id as the command layer writes it ("B000001")."""
    @property
    def expires_ms(self) -> int:
        """When the hold lapses, in milliseconds since the Unix epoch (UTC)."""

@final
class Availability:
    """The places of one slot at one moment, returned by
    Engine.availability()."""

    @property
    def capacity(self) -> int:
        """Places the slot offers in all."""
    @property
    def booked(self) -> int:
        """Places taken by confirmed bookings."""
    @property
    def held(self) -> int:
        """Places taken by holds not yet confirmed."""
    @property
    def remaining(self) -> int:
        """Places still free: capacity - booked - held."""
    @property
    def reserved_quota(self) -> int:
        """Places still kept for referral and urgent classes."""
    @property
    def waiting(self) -> int:
        """Patients on the slot's waitlist."""
    @property
    def tight(self) -> bool:
        """号源紧张: few places left."""
    @property
    def closed(self) -> bool:
        """The slot is closed (service stopped)."""

class YilianError(Exception):
    """Base class of every yilian error; str(err) is 'CODE: message'."""

    code: ErrorCodeName
    """The stable string code, e.g. 'SLOT_FULL' (``yilian.ErrorCode[code]`` describes it)."""
    numeric_code: int
    """The stable numeric code; its thousands digit is the family."""
    message: str
    """The English message (no personal data)."""
    message_zh: str
    """The Chinese message (no personal data)."""

class InputError(YilianError):
    """1xxx: the request itself is malformed."""

class NotFoundError(YilianError):
    """2xxx: something named in the request does not exist."""

class ConflictError(YilianError):
    """3xxx: the pool refuses the request (full, closed, overlapping, ...)."""

class StateError(YilianError):
    """4xxx: the booking is in a state that does not allow the step."""

class ForbiddenError(YilianError):
    """5xxx: this institution may not act on that object."""

class IdempotencyError(YilianError):
    """6xxx: a request id was reused for a different request, or is in progress."""

class StorageError(YilianError):
    """7xxx: the durable store failed, is locked, or the engine is closed."""

class BindingError(YilianError):
    """8xxx: an argument only the binding can see is wrong (e.g. invalid UTF-8)."""

class InternalError(YilianError):
    """9xxx: a bug in yilian: a caught Rust panic (PANIC) or a broken invariant."""

def error_codes() -> List[Tuple[ErrorCodeName, int, ErrorFamilyName]]:
    """Every error code as (code, numeric_code, family), in numeric order."""

def commands() -> List[str]:
    """The command names Engine.call() understands."""

def _raise_code(numeric_code: int) -> None:
    """Test hook: raises the exception the binding maps ``numeric_code`` to."""
