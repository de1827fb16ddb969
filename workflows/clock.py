"""One place for the current time, so freezegun (tests) and shifted clocks (servers) drive it."""
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    """Aware UTC now; SpiffWorkflow's timers read the same system clock."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; the store always means UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def local_date(value: datetime) -> date:
    return as_utc(value).astimezone(SHANGHAI).date()


def start_of_local_day(day: date) -> datetime:
    """Midnight in Shanghai of `day`, as aware UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(UTC)


def publicity_window(start: datetime, days: int) -> tuple[datetime, datetime, date]:
    """The end of a term of `days` full calendar days (Shanghai dates).

    As in Art. 201 of the Civil Code, the day the notice goes up does not count: the term
    runs from the next day, and ends when its last day is over. Returns (start, end, last day).
    """
    first_day = local_date(start) + timedelta(days=1)
    last_day = first_day + timedelta(days=days - 1)
    return as_utc(start), start_of_local_day(last_day + timedelta(days=1)), last_day
