"""Where ``fw sweep`` keeps a study: the ``--storage`` URL,
checked before Optuna opens it (SQLAlchemy comes with Optuna).

- SQLite: a file; not memory (each process would see a study of its own),
  not a folder, nothing under /dev, /proc or /sys, and never a file of the
  user's that is not a database, which SQLite would write its tables into.
- ``postgresql://`` with no driver named gets whichever of psycopg (3) and
  psycopg2 is installed: SQLAlchemy 2.1 would take psycopg 3 alone.
- A driver that is missing is named with the package that installs it.
- PostgreSQL gets a connect timeout, so a server that never answers is an
  error naming it, not a hang.
"""

import contextlib
from pathlib import Path

from ..errors import FwError

#: Seconds to wait for a database server's answer when the URL gives no ``connect_timeout``.
CONNECT_TIMEOUT = 10

#: The pip package that installs each database driver module.
PACKAGES = {
    "psycopg": "'psycopg[binary]'",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "pymysql",
}

#: The drivers that take libpq's ``connect_timeout``.
_TIMEOUT_DRIVERS = ("psycopg", "psycopg2")

EXAMPLES = "e.g. sqlite:///runs/sweep.db or postgresql://user:password@host/db"


def checked_url(text: str) -> str:
    """The URL that ``fw sweep`` hands Optuna, with a PostgreSQL driver named;
    a one-line FwError if it cannot be used."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as e:
        raise FwError(f"--storage {text}: not a database URL ({e}); give one {EXAMPLES}") from None
    try:
        dialect = url.get_dialect()
    except ArgumentError:  # NoSuchModuleError: no such dialect or driver
        meant = "; PostgreSQL's is postgresql://" if url.drivername == "postgres" else f"; give a URL {EXAMPLES}"
        raise FwError(f"--storage {shown(url)}: SQLAlchemy knows no database '{url.drivername}'{meant}") from None
    if url.get_backend_name() == "sqlite":
        _check_sqlite(url)
    elif url.drivername == "postgresql":
        url = url.set(drivername=f"postgresql+{_postgres_driver(url)}")
    else:
        _import_driver(dialect, url)
    return url.render_as_string(hide_password=False)


def shown(url) -> str:
    """The URL for messages: its password as ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: shown as given
        return str(url)


def sqlite_file(url) -> Path | None:
    """The database file of a SQLite URL, else None."""
    from sqlalchemy.engine import make_url

    url = make_url(url)
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None


def engine_kwargs(url) -> dict:
    """SQLite waits for a busy database; psycopg and psycopg2 give up on a silent server after CONNECT_TIMEOUT s."""
    from sqlalchemy.engine import make_url

    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": 120}}
    if url.get_driver_name() in _TIMEOUT_DRIVERS and "connect_timeout" not in url.query:
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}}
    return {}


def database_problem(e, url) -> str:
    """One line for a SQLAlchemy error from opening the study: which server or file, and what it said."""
    from sqlalchemy.engine import make_url

    url = make_url(url)
    said = str(getattr(e, "orig", None) or e).strip()
    said = " ".join(said.split("\n")[0].split()) or type(e).__name__
    if url.get_backend_name() == "sqlite":
        where = "; check that its folder exists and is writable" if "unable to open" in said else ""
        return f"cannot use the SQLite file {url.database}: {said}{where}"
    server = f"{url.host or 'localhost'}:{url.port or _default_port(url)}"
    if "timeout" in said.lower() or "timed out" in said.lower():
        wait = url.query.get("connect_timeout", CONNECT_TIMEOUT)
        return (
            f"the database server {server} did not answer within {wait} s; check the host and port, and that the "
            "server runs there and lets this machine in (a longer wait: add ?connect_timeout=SECONDS to the URL)"
        )
    return f"cannot use the database at {server}: {said}"


@contextlib.contextmanager
def creation_lock(url):
    """One process at a time creates a study (and the tables), or reads it to write its best.yaml: two ``fw sweep``
    started together must not race. An flock beside a SQLite file, an advisory lock in PostgreSQL; ``url`` None:
    no lock (the caller holds it)."""
    db = sqlite_file(url) if url is not None else None
    if db is not None:
        import fcntl
        import os

        lock = db.with_name(f".{db.name}.lock")
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise FwError(
                f"--storage {shown(url)}: cannot make the lock file {lock} ({e.strerror or e}); "
                "choose a database in a folder you can write"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits; the lock goes with the process
            yield
        finally:
            os.close(fd)
    elif url is not None and _backend(url) == "postgresql":
        with _advisory_lock(url):
            yield
    else:
        yield


@contextlib.contextmanager
def _advisory_lock(url):
    """PostgreSQL's session lock (``pg_advisory_lock``), held on a connection of its own while the body runs."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool, **engine_kwargs(url))
    try:
        with engine.connect() as conn:  # closing it ends the session, and so the lock
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})  # waits for the holder
            yield
    except SQLAlchemyError as e:
        raise FwError(f"--storage {shown(url)}: {database_problem(e, url)}") from e
    finally:
        engine.dispose()


#: The advisory lock's number: fw sweep's own, the same in every process.
_LOCK_KEY = int.from_bytes(b"fw-sweep", "big") & 0x7FFF_FFFF_FFFF_FFFF


def _backend(url):
    from sqlalchemy.engine import make_url

    return make_url(url).get_backend_name()


def _default_port(url):
    return {"postgresql": 5432, "mysql": 3306}.get(url.get_backend_name(), "its default port")


def _check_sqlite(url):
    from ..safeio.files import refuse_system_path

    db = url.database
    if not db or db == ":memory:" or "mode=memory" in db:
        raise FwError(
            f"--storage {shown(url)} names no file: SQLite would keep the study in memory, a new one in every "
            "process, lost at its end; give a file, e.g. sqlite:///runs/sweep.db"
        )
    path = Path(db)
    refuse_system_path(path, "--storage")
    folder = next((p for p in path.absolute().parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise FwError(
            f"--storage {shown(url)}: {folder} is not a folder; "
            "give a database file in one, e.g. sqlite:///runs/sweep.db"
        )
    if path.is_dir():
        raise FwError(
            f"--storage {shown(url)}: {path} is a folder; give a file in it, e.g. sqlite:///{path / 'sweep.db'}"
        )
    if path.exists() and not path.is_file():
        raise FwError(
            f"--storage {shown(url)}: {path} is not a regular file; give a database file, e.g. sqlite:///runs/sweep.db"
        )
    if path.is_file():
        try:
            with open(path, "rb") as f:
                head = f.read(16)
        except OSError as e:
            raise FwError(
                f"--storage {shown(url)}: cannot read {path} ({e.strerror or e}); check its permissions"
            ) from e
        if head and head != b"SQLite format 3\x00":
            raise FwError(
                f"--storage {shown(url)}: {path} is not a SQLite database, and fw sweep would write its tables into "
                "it; give a new file name, e.g. sqlite:///runs/sweep.db"
            )
        tables = _sqlite_tables(path, url) if head else set()
        if tables and not OPTUNA_TABLES <= tables:
            raise FwError(
                f"--storage {shown(url)}: {path} is a SQLite database of something else (tables "
                f"{', '.join(sorted(tables)[:5])}), and fw sweep would add its tables to it; give a new file name, "
                "e.g. sqlite:///runs/sweep.db"
            )


#: Tables every Optuna database has: a database with other tables and not these is someone else's.
OPTUNA_TABLES = {"studies", "version_info"}


def _sqlite_tables(path, url) -> set:
    """The tables of a SQLite file, read without writing anything (read-only: no journal, no lock file)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)) as db:
            return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as e:
        raise FwError(
            f"--storage {shown(url)}: {path} looks like a SQLite database but cannot be read ({e}); "
            "give a new file name, e.g. sqlite:///runs/sweep.db"
        ) from None


def _postgres_driver(url) -> str:
    """``psycopg`` (SQLAlchemy's default) if it imports, else ``psycopg2``; neither: what to install."""
    from sqlalchemy.engine import make_url

    for driver in ("psycopg", "psycopg2"):
        try:
            _dbapi(make_url(f"postgresql+{driver}://").get_dialect())
            return driver
        except ImportError:
            continue
    raise FwError(
        f"--storage {shown(url)}: PostgreSQL needs a driver, and neither psycopg2 nor psycopg (3) is installed; "
        "pip install psycopg2-binary"
    )


def _import_driver(dialect, url):
    try:
        _dbapi(dialect)
    except ImportError as e:
        module = (e.name or "").split(".")[0]
        how = f"pip install {PACKAGES.get(module, module)}" if module else f"({e})"
        raise FwError(
            f"--storage {shown(url)}: its driver, {module or url.drivername}, is not installed; {how}"
        ) from None


def _dbapi(dialect):
    """Import the dialect's driver module (``import_dbapi`` since SQLAlchemy 2.0, ``dbapi`` before)."""
    return (getattr(dialect, "import_dbapi", None) or dialect.dbapi)()
