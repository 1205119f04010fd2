"""events.jsonl for the synthetic generator: app and web events of the
users in users.csv, grouped in sessions, over the generated days.

Built for volume (50M events in minutes): users are processed in chunks,
every per-event attribute is a numpy array, and each JSON line is assembled
by Arrow's C++ string kernels from pre-quoted pieces; the file is written
straight from the Arrow buffer. No per-event Python.

Ids: an event id is a bijective 64-bit mix of (UTC date, position in that
date), so ids are unique across days and runs of other days, and look
random. A session id is a differently salted mix of its first event's.
Each chunk has its own seed stream (config.STREAM_EVENTS).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sflux.generate.config import day_slices
from sflux.ingest.contract import DEVICE_TYPES, EVENT_TYPES

SECONDS_PER_DAY = 86_400
EVENTS_PER_CHUNK = 500_000  # expected events simulated at once (~150 MB of text)
# Everything but signup, which happens once, when the account is created.
EVENT_WEIGHTS = {"page_view": 0.45, "click": 0.20, "search": 0.10, "add_to_cart": 0.06,
                 "purchase": 0.03, "video_play": 0.06, "video_complete": 0.03, "login": 0.04,
                 "logout": 0.02}
DEVICE_WEIGHTS = (0.55, 0.30, 0.10, 0.05)  # in DEVICE_TYPES order
BROWSERS = {
    "mobile": ("Chrome Mobile", "Safari Mobile", "Samsung Internet", "SantéFlux App"),
    "desktop": ("Chrome", "Firefox", "Safari", "Edge"),
    "tablet": ("Safari Mobile", "Chrome Mobile"),
    "watch": ("SantéFlux Watch",),
}
PAGES = {
    "page_view": ("/", "/dashboard", "/vitals", "/vitals/heart-rate", "/sleep", "/stress",
                  "/plans", "/account", "/help", "/articles/resting-heart-rate",
                  "/articles/sleep-hygiene", "/articles/stress-and-hrv"),
    "click": ("/dashboard", "/vitals", "/plans", "/account", "/sleep"),
    "search": ("/search?q=heart+rate", "/search?q=sleep", "/search?q=stress",
               "/search?q=cancel+subscription", "/search?q=strap"),
    "add_to_cart": ("/shop/strap-sport", "/shop/charger", "/shop/plan-upgrade"),
    "purchase": ("/checkout/confirm",),
    "video_play": ("/videos/breathing-101", "/videos/sleep-routine", "/videos/cardio-zones"),
    "video_complete": ("/videos/breathing-101", "/videos/sleep-routine", "/videos/cardio-zones"),
    "login": ("/login",),
    "logout": ("/logout",),
    "signup": ("/signup",),
}
SITE = "https://app.santeflux.eu"
EXTERNAL_REFERRERS = ("https://www.google.com/", "https://www.google.fr/", "https://www.bing.com/",
                      "https://duckduckgo.com/", "https://www.facebook.com/",
                      "https://www.instagram.com/", "https://newsletter.santeflux.eu/")
DIRECT_SHARE = 0.4  # sessions that start without a referrer
PRICES_CENTS = np.array([499, 999, 1499, 1999, 2999, 4999, 9900, 14900])
SESSION_MEAN_EVENTS = 8
GAP_MEAN_SECONDS = 45.0
GAP_MAX_SECONDS = 900
ACTIVITY_SHAPE = 2.0  # per-user activity ~ Gamma(2, 1/2): mean 1, some heavy users
STATUS_ACTIVITY = (1.0, 0.2, 0.0)  # active, suspended, closed
# Europe is UTC+1/+2: a morning and an evening peak.
HOUR_WEIGHTS = np.array([1, 0.5, 0.3, 0.3, 0.5, 1.5, 4, 7, 8, 6, 5, 5, 6, 5, 5, 5, 6, 8, 10, 10,
                         9, 7, 4, 2], dtype=float)
EVENT_FAULT_KINDS = ("malformed_json", "missing_user_id", "bad_event_ts", "unknown_event_type",
                     "amount_on_non_purchase", "missing_amount_on_purchase")
MIX_EVENT, MIX_SESSION = np.uint64(0x5E7E_17A1_D00D_F00D), np.uint64(0x0C0F_FEE5_E551_0000)


def mix64(values: np.ndarray, salt: np.uint64) -> np.ndarray:
    """splitmix64's finalizer: a bijection on 64-bit integers."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) ^ salt
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hex16(values: np.ndarray) -> pa.Array:
    """uint64 -> 16 lower-case hex digits, vectorised."""
    shifts = np.arange(60, -1, -4, dtype=np.uint64)
    nibbles = ((values[:, None] >> shifts) & np.uint64(0xF)).astype(np.uint8)
    table = np.frombuffer(b"0123456789abcdef", np.uint8)
    chars = np.ascontiguousarray(table[nibbles])
    if not len(values):
        return pa.array([], pa.string())
    return pa.array(chars.view("S16").ravel(), pa.binary()).cast(pa.string())


def _dictionary(values: list[str]) -> pa.Array:
    return pa.array(values, pa.string())


def event_file_names(start: date, days: int, split: str) -> list[str]:
    if split == "day":
        return [f"events_{(start + timedelta(days=d)).isoformat()}.jsonl" for d in range(days)]
    return ["events.jsonl"]


class EventsSink:
    """JSON Lines to one file or one per day, via temporary names the
    loader's globs cannot match; `commit` renames them into place."""

    def __init__(self, out: Path, start: date, days: int, split: str) -> None:
        self.out = out
        self.names = event_file_names(start, days, split)
        self.split = split == "day"
        self.rows = [0] * len(self.names)
        self.streams = [pa.OSFile(str(self._partial(n)), "wb") for n in self.names]

    def _partial(self, name: str) -> Path:
        return self.out / f".{name}.partial"

    def write(self, lines: pa.Array, day: np.ndarray) -> None:
        """`lines` end with a newline; `day` sorted when splitting."""
        if not self.split:
            self._write(0, lines)
            return
        for d, offset, length in day_slices(day, len(self.names)):
            self._write(d, lines.slice(offset, length))

    def _write(self, index: int, lines: pa.Array) -> None:
        """Straight from the Arrow value buffer: the lines are contiguous."""
        if not len(lines):
            return
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
        first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
        self.streams[index].write(lines.buffers()[2][first:last])
        self.rows[index] += len(lines)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()

    def abort(self) -> None:
        for stream in self.streams:
            try:
                stream.close()
            except (OSError, pa.ArrowException):
                pass
        for name in self.names:
            self._partial(name).unlink(missing_ok=True)

    def commit(self) -> dict[str, int]:
        for name in self.names:
            os.replace(self._partial(name), self.out / name)
        return dict(zip(self.names, self.rows))


@dataclass
class EventCounts:
    events: int = 0  # distinct events, faulty ones included
    signups: int = 0
    by_type: dict[str, int] = field(default_factory=lambda: {t: 0 for t in EVENT_TYPES})
    faults: dict[str, int] = field(default_factory=lambda: {k: 0 for k in EVENT_FAULT_KINDS})
    duplicate_lines: int = 0


@dataclass(frozen=True)
class EventInputs:
    """What events need from users.csv, per user (global user order)."""

    user_ids: pa.Array
    ip_address: pa.Array
    created_at: np.ndarray  # epoch seconds
    status: np.ndarray  # index into ACCOUNT_STATUSES


@dataclass(frozen=True)
class Vocabulary:
    """Every text value an event can take, pre-quoted as JSON pieces."""

    types: pa.Array  # '"page_view"', ... in EVENT_TYPES order
    devices: pa.Array
    browsers: pa.Array
    browser_start: np.ndarray  # per device, first index into browsers
    browser_count: np.ndarray
    pages: pa.Array
    page_start: np.ndarray  # per event type
    page_count: np.ndarray
    referrers: pa.Array  # internal (one per page), external, then 'null'

    @classmethod
    def build(cls) -> Vocabulary:
        browsers, b_start, b_count = [], [], []
        for device in DEVICE_TYPES:
            b_start.append(len(browsers))
            b_count.append(len(BROWSERS[device]))
            browsers += BROWSERS[device]
        pages, p_start, p_count = [], [], []
        for event_type in EVENT_TYPES:
            p_start.append(len(pages))
            p_count.append(len(PAGES[event_type]))
            pages += PAGES[event_type]
        referrers = [f'"{SITE}{p}"' for p in pages] + [f'"{r}"' for r in EXTERNAL_REFERRERS]
        return cls(
            types=_dictionary([f'"{t}"' for t in EVENT_TYPES]),
            devices=_dictionary([f'"{d}"' for d in DEVICE_TYPES]),
            browsers=_dictionary([f'"{b}"' for b in browsers]),
            browser_start=np.array(b_start), browser_count=np.array(b_count),
            pages=_dictionary([f'"{p}"' for p in pages]),
            page_start=np.array(p_start), page_count=np.array(p_count),
            referrers=_dictionary(referrers + ["null"]),
        )


def _quoted(values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise('"', values, '"', "")


def _money(cents: np.ndarray) -> pa.Array:
    whole = pa.array(cents // 100).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(cents % 100).cast(pa.string()), 2, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


@dataclass
class Chunk:
    """One chunk's events in output order (day, user, time)."""

    user: np.ndarray  # global user index
    day: np.ndarray
    ts: np.ndarray  # epoch seconds
    event_type: np.ndarray  # index into EVENT_TYPES
    device: np.ndarray
    browser: np.ndarray
    page: np.ndarray
    referrer: np.ndarray  # index into Vocabulary.referrers
    amount_cents: np.ndarray  # 0 when not a purchase
    is_first: np.ndarray  # first event of its session
    session_first: np.ndarray  # position (in this chunk) of the session's first event


def simulate_chunk(inputs: EventInputs, first: int, last: int, start_day: int, days: int,
                   per_day: float, vocab: Vocabulary, rng: np.random.Generator) -> Chunk:
    n_users = last - first
    activity = rng.gamma(ACTIVITY_SHAPE, 1.0 / ACTIVITY_SHAPE, n_users)
    activity *= np.array(STATUS_ACTIVITY)[inputs.status[first:last]]
    per_user_day = np.repeat(activity * per_day, days)
    count = rng.poisson(per_user_day)  # events per (user, day), user-major
    sessions = np.where(count > 0, 1 + rng.binomial(np.maximum(count - 1, 0),
                                                     1.0 / SESSION_MEAN_EVENTS), 0)
    base = np.cumsum(sessions) - sessions
    ud = np.repeat(np.arange(len(count)), count)
    total = len(ud)
    session = np.sort(base[ud] + (rng.random(total) * sessions[ud]).astype(np.int64))
    n_sessions = int(sessions.sum())
    hours = rng.choice(24, size=n_sessions, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    session_start = hours * 3600 + rng.integers(0, 3600, n_sessions)
    device = rng.choice(len(DEVICE_TYPES), size=n_sessions, p=np.array(DEVICE_WEIGHTS))
    browser = vocab.browser_start[device] + (
        rng.random(n_sessions) * vocab.browser_count[device]).astype(np.int64)
    direct = rng.random(n_sessions) < DIRECT_SHARE
    external = rng.integers(0, len(EXTERNAL_REFERRERS), n_sessions)

    is_first = np.r_[True, session[1:] != session[:-1]] if total else np.zeros(0, bool)
    gaps = np.clip(rng.exponential(GAP_MEAN_SECONDS, total), 1, GAP_MAX_SECONDS).astype(np.int64)
    gaps[is_first] = 0
    elapsed = np.cumsum(gaps)
    first_pos = np.maximum.accumulate(np.where(is_first, np.arange(total), 0))
    second = np.minimum(session_start[session] + elapsed - elapsed[first_pos], SECONDS_PER_DAY - 1)
    user = first + ud // days
    day = ud % days
    ts = (start_day + day) * SECONDS_PER_DAY + second

    regular = [EVENT_TYPES.index(t) for t in EVENT_WEIGHTS]
    weights = np.array(list(EVENT_WEIGHTS.values()))
    event_type = np.array(regular)[
        np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(total), side="right")
        .clip(0, len(regular) - 1)]

    # Members who joined during these days: nothing before, one signup then.
    window = (start_day * SECONDS_PER_DAY, (start_day + days) * SECONDS_PER_DAY)
    created = inputs.created_at[user]
    keep = ts >= created
    joined = np.flatnonzero((inputs.created_at[first:last] >= window[0])
                            & (inputs.created_at[first:last] < window[1])
                            & (np.array(STATUS_ACTIVITY)[inputs.status[first:last]] > 0)) + first
    n_new = len(joined)
    new_session = np.arange(n_sessions, n_sessions + n_new)
    signup_device = rng.choice(len(DEVICE_TYPES), size=n_new, p=np.array(DEVICE_WEIGHTS))
    device = np.r_[device, signup_device]
    browser = np.r_[browser, vocab.browser_start[signup_device] + (
        rng.random(n_new) * vocab.browser_count[signup_device]).astype(np.int64)]
    direct = np.r_[direct, np.zeros(n_new, bool)]
    external = np.r_[external, rng.integers(0, len(EXTERNAL_REFERRERS), n_new)]

    user = np.r_[user[keep], joined]
    ts = np.r_[ts[keep], inputs.created_at[joined]]
    day = (ts // SECONDS_PER_DAY - start_day).astype(np.int64)
    session = np.r_[session[keep], new_session]
    event_type = np.r_[event_type[keep], np.full(n_new, EVENT_TYPES.index("signup"))]

    # Output order: day, user, time (stable: a session's first event stays first).
    n_users_span = max(n_users, 1)
    order = np.argsort((day * n_users_span + (user - first)) * SECONDS_PER_DAY
                       + ts % SECONDS_PER_DAY, kind="stable")
    user, ts, day, session, event_type = (a[order] for a in (user, ts, day, session, event_type))
    n = len(user)
    is_first = np.zeros(n, bool)
    _, first_index = np.unique(session, return_index=True)
    is_first[first_index] = True
    session_first = np.zeros(n_sessions + n_new, dtype=np.int64)
    session_first[session[first_index]] = first_index
    session_first = session_first[session]

    page = vocab.page_start[event_type] + (
        rng.random(n) * vocab.page_count[event_type]).astype(np.int64)
    previous = np.r_[0, page[:-1]]
    outside = np.where(direct[session], len(vocab.referrers) - 1,
                       len(vocab.pages) + external[session])
    referrer = np.where(is_first, outside, previous)
    purchase = event_type == EVENT_TYPES.index("purchase")
    amount = np.where(purchase, PRICES_CENTS[rng.integers(0, len(PRICES_CENTS), n)], 0)
    return Chunk(user, day, ts, event_type, device[session], browser[session], page, referrer,
                 amount, is_first, session_first)


def chunk_lines(chunk: Chunk, inputs: EventInputs, vocab: Vocabulary, id_base: np.ndarray,
                bad_rate: float, duplicate_rate: float, rng: np.random.Generator,
                counts: EventCounts, last_login: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """The chunk's JSON lines (each ending in a newline), faults injected,
    duplicate lines spliced in; and each line's day. `id_base` is, per day,
    how many events earlier chunks numbered for that day (updated);
    `last_login` the latest valid login per user (updated)."""
    n = len(chunk.user)
    day_start = np.searchsorted(chunk.day, np.arange(len(id_base)))
    position = np.arange(n) - day_start[chunk.day] + id_base[chunk.day]
    np.add.at(id_base, chunk.day, 1)
    raw_id = (chunk.ts // SECONDS_PER_DAY).astype(np.uint64) << np.uint64(36) | position.astype(
        np.uint64)
    event_ids = hex16(mix64(raw_id, MIX_EVENT))
    session_ids = hex16(mix64(raw_id[chunk.session_first], MIX_SESSION))

    event_type = chunk.event_type.copy()
    amount = chunk.amount_cents.copy()
    faulty = rng.random(n) < bad_rate
    kind = np.where(faulty, rng.integers(0, len(EVENT_FAULT_KINDS), n), -1)
    purchase = EVENT_TYPES.index("purchase")
    # Amount faults: make the event the kind that must not / must have one.
    wrong_amount = kind == EVENT_FAULT_KINDS.index("amount_on_non_purchase")
    event_type[wrong_amount & (event_type == purchase)] = EVENT_TYPES.index("page_view")
    amount[wrong_amount] = PRICES_CENTS[0]
    no_amount = kind == EVENT_FAULT_KINDS.index("missing_amount_on_purchase")
    event_type[no_amount] = purchase
    amount[no_amount] = 0
    # An unknown type carries no amount: one fault per line, one reason.
    amount[kind == EVENT_FAULT_KINDS.index("unknown_event_type")] = 0
    for k, name in enumerate(EVENT_FAULT_KINDS):
        counts.faults[name] += int((kind == k).sum())
    logins = (event_type == EVENT_TYPES.index("login")) & ~faulty
    np.maximum.at(last_login, chunk.user[logins], chunk.ts[logins])
    counts.events += n
    counts.signups += int((event_type == EVENT_TYPES.index("signup")).sum())
    for t, c in zip(*np.unique(event_type, return_counts=True)):
        counts.by_type[EVENT_TYPES[t]] += int(c)

    stamp = pa.array(chunk.ts, pa.timestamp("s")).cast(pa.string())
    bad_ts = kind == EVENT_FAULT_KINDS.index("bad_event_ts")
    if bad_ts.any():
        iso = pc.binary_join_element_wise(pc.utf8_slice_codeunits(stamp, 0, 10), "T",
                                          pc.utf8_slice_codeunits(stamp, 11, 19), "Z", "")
        stamp = pc.if_else(pa.array(bad_ts), iso, stamp)
    type_text = vocab.types.take(pa.array(event_type))
    unknown = kind == EVENT_FAULT_KINDS.index("unknown_event_type")
    if unknown.any():
        type_text = pc.if_else(pa.array(unknown), pa.scalar('"pageview"'), type_text)
    user_piece = pc.binary_join_element_wise(',"user_id":"', inputs.user_ids.take(pa.array(chunk.user)),
                                             '"', "")
    missing = kind == EVENT_FAULT_KINDS.index("missing_user_id")
    if missing.any():
        user_piece = pc.if_else(pa.array(missing), pa.scalar(""), user_piece)
    has_amount = amount > 0
    amount_piece = pc.if_else(
        pa.array(has_amount),
        pc.binary_join_element_wise(',"amount_eur":', _money(amount), ""),
        pa.scalar(""),
    )
    line = pc.binary_join_element_wise(
        '{"event_id":"', event_ids, '"', user_piece,
        ',"session_id":"', session_ids,
        '","event_type":', type_text,
        ',"event_ts":"', stamp,
        '","device_type":', vocab.devices.take(pa.array(chunk.device)),
        ',"browser":', vocab.browsers.take(pa.array(chunk.browser)),
        ',"page":', vocab.pages.take(pa.array(chunk.page)),
        ',"referrer":', vocab.referrers.take(pa.array(chunk.referrer)),
        ',"ip_address":"', inputs.ip_address.take(pa.array(chunk.user)), '"',
        amount_piece, "}\n", "",
    )
    broken = kind == EVENT_FAULT_KINDS.index("malformed_json")
    if broken.any():
        # The closing brace lost, as a cut-off write leaves it.
        cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(line, 0, -2), "\n", "")
        line = pc.if_else(pa.array(broken), cut, line)
    # Replayed lines (a retried upload), right after their original.
    copies = np.flatnonzero(~faulty & (rng.random(n) < duplicate_rate))
    counts.duplicate_lines += len(copies)
    if len(copies):
        order = np.sort(np.r_[np.arange(n) * 2, copies * 2 + 1]) // 2
        line = line.take(pa.array(order))
        day = chunk.day[order]
    else:
        day = chunk.day
    if isinstance(line, pa.ChunkedArray):
        line = line.combine_chunks()
    return line, day


def generate_events(inputs: EventInputs, start: date, days: int, per_day: float,
                    bad_rate: float, duplicate_rate: float, seed: int, stream: int,
                    sink: EventsSink) -> tuple[EventCounts, np.ndarray]:
    """Simulate, damage and write every chunk. Returns the counts and, per
    user, the time of the last login event (-1 if none)."""
    counts = EventCounts()
    vocab = Vocabulary.build()
    n_users = len(inputs.created_at)
    start_day = (start - date(1970, 1, 1)).days
    step = max(1, int(EVENTS_PER_CHUNK // max(days * per_day, 1e-9)))
    id_base = np.zeros(days, dtype=np.int64)
    last_login = np.full(n_users, -1, dtype=np.int64)
    for chunk_no, first in enumerate(range(0, n_users, step)):
        last = min(first + step, n_users)
        rng = np.random.default_rng([seed, stream, chunk_no])
        chunk = simulate_chunk(inputs, first, last, start_day, days, per_day, vocab, rng)
        lines, day = chunk_lines(chunk, inputs, vocab, id_base, bad_rate, duplicate_rate, rng,
                                 counts, last_login)
        sink.write(lines, day)
    return counts, last_login
