"""A run's Ray session, started and ended safely.

- **Loopback.** A Ray this process starts listens on 127.0.0.1 only (:func:`loopback_ray`):
  Ray gives code execution to whoever reaches its ports.
- **Token.** Token authentication is on, with a token this emulator creates before Ray
  starts (:func:`prepare_token`): ``$XDG_CONFIG_HOME/pipesdfa/ray-token`` (default
  ``~/.config/pipesdfa/ray-token``), mode 0600 in a 0700 folder. A token file that other
  users can read (``RAY_AUTH_TOKEN_PATH``, or Ray's default ``~/.ray/auth_token`` for a
  cluster) is refused.
- **Temp folder.** Ray's session files go into a folder of the run's own (0700, removed
  when the run ends; a folder left by a killed run is removed by the next run), or into
  ``--ray-temp DIR``, kept.
- **Bounded connect.** ``--address HOST:PORT`` is dialled first (``connect_timeout``
  seconds): nothing there is one line, not a hang.
- **SIGTERM** ends a run like Ctrl-C (:class:`Terminated`), also after Ray installed its
  own handler.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from emulator.limits import excerpt


class SessionError(ValueError):
    """A Ray session that cannot start safely; the message says why and what to do."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the run stops as on Ctrl-C (exit 143)."""


class RunFailed(RuntimeError):
    """The run cannot go on (actors kept dying, the chip stalled); the message says why."""


CONNECT_TIMEOUT_S = 30.0
"""Default seconds to reach a cluster given by ``--address`` before giving up."""

TEMP_PREFIX = "pipesdfa-ray-"
OWNER = "owner.pid"
MAX_TEMP_PATH = 48
"""Longest Ray temp folder path: Ray puts sockets three levels below it (``session_…/
sockets/plasma_store``) and a Unix socket path may have 107 characters."""


# --------------------------------------------------------------------------- loopback


def loopback_ray() -> None:
    """Make a Ray started by this process bind to 127.0.0.1 only.

    On Linux, Ray 2.60 replaces ``--node-ip-address 127.0.0.1`` with the machine's address
    and listens on every interface; its single-machine mode (this variable, read when ``ray``
    is imported) keeps every port on loopback. It also keeps a loopback ``--address`` on
    loopback (Ray otherwise dials the machine's address for ``127.0.0.1:PORT``).
    """
    if "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def is_loopback(address: str) -> bool:
    """Whether ``HOST:PORT`` names this machine's loopback interface."""
    host = address.rpartition(":")[0].strip("[]") or address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------------------ token


def token_folder(env: Mapping[str, str]) -> Path:
    """Where this emulator keeps its Ray token."""
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pipesdfa"


def check_private(path: Path) -> None:
    """Refuse a token file another user could read or swap: it must be a regular file this
    user owns, readable by nobody else, in a folder nobody else can write."""
    try:
        st = path.lstat()
    except OSError as err:
        raise SessionError(f"{path}: cannot read the Ray token: {err.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SessionError(f"{path}: the Ray token must be a regular file")
    if st.st_uid != os.getuid():
        raise SessionError(f"{path}: the Ray token belongs to another user (uid {st.st_uid})")
    if st.st_mode & 0o077:
        raise SessionError(
            f"{path}: the Ray token is readable by other users (mode "
            f"{stat.S_IMODE(st.st_mode):04o}), and whoever reads it can run code on the Ray "
            f"cluster: chmod 600 {path}, and make a new token if others may have read it"
        )
    parent = path.parent.stat()
    if parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX:
        raise SessionError(
            f"{path.parent}: others can write the Ray token's folder (mode "
            f"{stat.S_IMODE(parent.st_mode):04o}): chmod 700 {path.parent}"
        )


def prepare_token(env: MutableMapping[str, str], *, local: bool) -> Path | None:
    """Set up Ray's token authentication in ``env`` before Ray starts; the token file used
    (None: the token is in ``RAY_AUTH_TOKEN``, or the user turned authentication off).

    A local Ray gets this emulator's own token (made once, 0600 in a 0700 folder), unless
    ``RAY_AUTH_TOKEN_PATH`` names another; a cluster's token is the user's (that variable,
    or Ray's default file). Either way a file others can read is refused.
    """
    mode = env.get("RAY_AUTH_MODE")
    if mode is not None and mode.lower() != "token":
        return None  # the user's explicit choice (a cluster without auth is warned about)
    if env.get("RAY_AUTH_TOKEN"):
        env["RAY_AUTH_MODE"] = "token"
        return None
    given = env.get("RAY_AUTH_TOKEN_PATH")
    if given:
        path = Path(given)
    elif local:
        path = token_folder(env) / "ray-token"
        _make_token(path)
    else:
        path = Path.home() / ".ray" / "auth_token"
        if not path.exists():
            return None  # Ray says what is missing if the cluster wants a token
    check_private(path)
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN_PATH"] = str(path)
    return path


def _make_token(path: Path) -> None:
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_uid == os.getuid():
            folder.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as err:
        raise SessionError(f"{path}: cannot create the Ray token: {err.strerror}") from None
    with open(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32))


def use_local_token() -> Path | None:
    """Token authentication with this emulator's private token for the Ray this process is
    about to start itself (:func:`prepare_token`), also if ``ray`` is already imported."""
    path = prepare_token(os.environ, local=True)
    _refresh_ray_auth()
    return path


def _refresh_ray_auth() -> None:
    """Make an already imported Ray re-read ``RAY_AUTH_MODE`` and the token location."""
    if "ray" not in sys.modules:
        return
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def auth_warning(address: str, env: Mapping[str, str]) -> str | None:
    """The warning due when this process reached ``address`` without a token: a cluster with
    token authentication refuses such a client, so one that let it in has it off."""
    if address == "auto" or env.get("RAY_AUTH_MODE") == "token":
        return None
    return (
        f"the Ray cluster at {address} accepted this process without a token: its token "
        "authentication is off, and whoever reaches its ports can run code on it "
        "(launch/README.md: RAY_AUTH_MODE=token)"
    )


# ------------------------------------------------------------------------ temp folder


def temp_folder(given: str | None) -> tuple[Path, bool]:
    """Ray's temp folder for this run and whether it is ours to remove: ``given`` (made
    0700 if missing, kept), else a fresh private one under the system's temp folder."""
    sweep_stale()
    if given is not None:
        path = Path(given).absolute()
        if len(str(path)) > MAX_TEMP_PATH:
            raise SessionError(
                f"--ray-temp {given}: {len(str(path))} characters; Ray's socket paths under "
                f"it would pass the 107 a Unix socket may have: give {MAX_TEMP_PATH} or fewer"
            )
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise SessionError(f"--ray-temp {given}: cannot create: {err.strerror}") from None
        return path, False
    path = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=_temp_root()))
    (path / OWNER).write_text(f"{os.getpid()}\n", encoding="ascii")
    return path, True


def _temp_root() -> str:
    root = tempfile.gettempdir()
    return root if len(root) + len(TEMP_PREFIX) + 8 <= MAX_TEMP_PATH else "/tmp"


def sweep_stale(root: str | None = None) -> list[Path]:
    """Remove the temp folders of runs whose process is gone (killed before cleaning up);
    the folders removed."""
    gone = []
    for folder in Path(root or _temp_root()).glob(f"{TEMP_PREFIX}*"):
        try:
            if folder.stat().st_uid != os.getuid():
                continue
            pid = int((folder / OWNER).read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------- signals


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def handle_sigterm() -> None:
    """From now on SIGTERM raises :class:`Terminated` in the main thread."""
    signal.signal(signal.SIGTERM, _on_sigterm)


@contextlib.contextmanager
def _sigterm_kept() -> Iterator[None]:
    """Keep this process's SIGTERM handler across ``ray.init`` (which installs its own)."""
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if before is _on_sigterm and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, before)


# ------------------------------------------------------------------------ the session


def probe(address: str, timeout: float) -> None:
    """Dial ``HOST:PORT`` once, within ``timeout`` seconds; SessionError if nothing answers."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise SessionError(f"--address {address}: expected HOST:PORT or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except TimeoutError:
        raise SessionError(
            f"--address {address}: no answer within {timeout:g} s (--connect-timeout); is "
            "the cluster up and reachable (launch/README.md)?"
        ) from None
    except OSError as err:
        raise SessionError(
            f"--address {address}: cannot connect ({err.strerror or err}); is the cluster up "
            "(launch/README.md)?"
        ) from None


HARD_EXIT: dict[str, str | None] = {"prefix": None}
"""Set by the command line (:func:`exit_if_connect_hangs`): a connect that outlasts its
deadline inside Ray's C++ client, which never returns to Python, ends the process."""

HARD_EXIT_GRACE_S = 5.0
"""Seconds past the deadline before the hard exit (the soft one goes first)."""


def exit_if_connect_hangs(prefix: str | None) -> None:
    """Let a hung ``ray.init(address=…)`` end this process (exit 2, one line starting with
    ``prefix``) once its deadline has passed: right for a command line, not for a library
    caller (None: off)."""
    HARD_EXIT["prefix"] = prefix


@contextlib.contextmanager
def _deadline(seconds: float, address: str) -> Iterator[None]:
    """Raise SessionError if the block outlasts ``seconds`` (main thread only; checked when
    Ray's client returns to Python), and with :func:`exit_if_connect_hangs` end the process
    soon after if it never does."""
    message = (
        f"--address {address}: the cluster did not let this run in within {seconds:g} s "
        "(--connect-timeout); is it a Ray head's GCS port, and is the token right?"
    )
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise SessionError(message)

    stderr = os.dup(2)  # the terminal's, even if Ray's native output is silenced meanwhile

    def hung() -> None:
        sys.stderr.flush()
        os.write(stderr, f"{HARD_EXIT['prefix']}: {message}\n".encode())
        os._exit(2)

    watchdog = None
    if HARD_EXIT["prefix"] is not None:
        watchdog = threading.Timer(seconds + HARD_EXIT_GRACE_S, hung)
        watchdog.daemon = True
        watchdog.start()
    before = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
        if watchdog is not None:
            watchdog.cancel()
        os.close(stderr)


def start_failure(err: Exception, limits: Mapping[str, tuple[int, int]] | None = None) -> str:
    """One line for a Ray, or its actors, that did not start: the limit that most likely
    stopped it (an address-space cap starves its processes, too few file descriptors its
    sockets) and how to run without Ray. ``limits``: (soft, hard) of ``RLIMIT_AS`` and
    ``RLIMIT_NOFILE`` (default: this process's)."""
    import resource

    if limits is None:
        limits = {
            name: resource.getrlimit(getattr(resource, name))
            for name in ("RLIMIT_AS", "RLIMIT_NOFILE")
        }
    soft_as, soft_files = limits["RLIMIT_AS"][0], limits["RLIMIT_NOFILE"][0]
    if soft_as != resource.RLIM_INFINITY:
        return _did_not_start(_address_space_cause(soft_as))
    if soft_files < MIN_OPEN_FILES:
        return _did_not_start(
            f"only {soft_files} open files are allowed (ulimit -n), too few for Ray's "
            f"sockets; raise it (ulimit -n {MIN_OPEN_FILES} or more)"
        )
    return _did_not_start(
        excerpt(str(err).splitlines()[0] if str(err) else type(err).__name__, 160)
    )


def _address_space_cause(soft: int) -> str:
    return (
        f"the address-space limit (ulimit -v {soft // 1024:,} KiB) starves its processes; "
        "raise it (ulimit -v unlimited)"
    )


def _did_not_start(cause: str) -> str:
    return f"Ray did not start: {cause}; or run without Ray: --runtime local"


MIN_ADDRESS_SPACE = 16 * 2**30
"""Virtual memory a local Ray's processes reserve at least: its raylet maps 14.9 GB and each
worker 8.6 GB here (Ray 2.60; VSZ, mostly the object store's mapping), so a smaller
``ulimit -v`` starves them: Ray then times out after 30 s."""


def check_address_space(limit: int | None = None) -> None:
    """Refuse at once, in one line, an address-space cap a local Ray cannot start under
    (``limit``: the soft ``RLIMIT_AS``, default this process's), instead of Ray's 30 s
    start-up timeout and traceback."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_AS)[0] if limit is None else limit
    if soft != resource.RLIM_INFINITY and soft < MIN_ADDRESS_SPACE:
        raise SessionError(_did_not_start(_address_space_cause(soft)))


MIN_OPEN_FILES = 256
"""Open files below which a local Ray is likely to fail (its sockets and logs). Measured here
(Ray 2.60, the default job): 30 stops Ray at start, 60 kills its actors or hangs it, 100
runs."""


@contextlib.contextmanager
def _native_stderr_quiet() -> Iterator[None]:
    """Ray's C++ client logs a warning per retry to file descriptor 2 while it connects (a
    refused token: one a second, until the timeout); they go nowhere, and our own one line
    says what happened."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def refused(address: str, err: Exception, token: Path | None, env: Mapping[str, str]) -> str:
    """One line for a cluster that did not let this run in: Ray's reason, and where no token
    was given, how to give one (a cluster with token authentication refuses a driver without
    it), or run without the cluster."""
    reason = excerpt(str(err).splitlines()[0] if str(err) else type(err).__name__, 120)
    line = f"--address {address}: Ray did not connect: {reason}"
    auth_off = env.get("RAY_AUTH_MODE", "token").lower() != "token"
    if token is None and not env.get("RAY_AUTH_TOKEN") and not auth_off:
        line += (
            "; no Ray token was given: if the cluster uses token authentication, set "
            "RAY_AUTH_TOKEN_PATH to its token file (or copy it to ~/.ray/auth_token, 0600)"
        )
    return line + "; or run without the cluster: --runtime local"


@contextlib.contextmanager
def ray_session(
    address: str | None,
    num_cpus: int | None = None,
    *,
    ray_logs: bool = False,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    temp_dir: str | None = None,
) -> Iterator[None]:
    """Ray on local resources (started here, loopback only, token on, its own temp folder;
    shut down and cleaned up at the end), or the cluster at ``address`` (reached within
    ``connect_timeout`` seconds); an already initialised Ray is used as it is. Ray's own
    log lines stay quiet unless ``ray_logs``: the user sees ours."""
    import ray

    if ray.is_initialized():
        yield
        return
    level = logging.INFO if ray_logs else logging.ERROR
    logging.getLogger("ray").setLevel(level)  # before init: its token set-up warns early
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": ray_logs,
        "logging_level": level,
    }
    ours: Path | None = None
    if address:
        token = prepare_token(os.environ, local=False)
        _refresh_ray_auth()
        if address != "auto":
            probe(address, connect_timeout)
        quiet = contextlib.nullcontext() if ray_logs else _native_stderr_quiet()
        try:
            with _sigterm_kept(), _deadline(connect_timeout, address), quiet:
                ray.init(address=address, **options)
        except (ConnectionError, RuntimeError) as err:
            raise SessionError(refused(address, err, token, os.environ)) from None
        warning = auth_warning(address, os.environ)
        if warning:
            warnings.warn(warning, stacklevel=3)
    else:
        check_address_space()
        use_local_token()
        folder, owned = temp_folder(temp_dir)
        ours = folder if owned else None
        try:
            with _sigterm_kept():
                ray.init(
                    address="local",  # a new instance, even if another Ray runs here
                    num_cpus=num_cpus,
                    _node_ip_address="127.0.0.1",
                    _temp_dir=str(folder),
                    **options,
                )
        except BaseException as err:
            if ours is not None:
                shutil.rmtree(ours, ignore_errors=True)
            if isinstance(err, Exception) and not isinstance(err, SessionError):
                raise SessionError(start_failure(err)) from None
            raise
    try:
        yield
    finally:
        ray.shutdown()
        if ours is not None:
            shutil.rmtree(ours, ignore_errors=True)
