"""The kubelet endpoint over real HTTP: logs (parameters, errors as Status, following), exec
sessions over a real WebSocket with real processes, and the token every request needs."""

from __future__ import annotations

import asyncio
import datetime
import errno
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import uvloop

from tinykube.api import errors, remotecommand
from tinykube.kubelet.logs import ContainerLog
from tinykube.kubelet.server import KubeletServer, since_bound
from tinykube.kubelet.stdio import ContainerIO
from tinykube.testing import until

TOKEN = "kubelet-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def no_exec(*_args: object) -> tuple[list[str], dict[str, str], str | None]:
    raise errors.BadRequest("no exec in this test")


def no_attach(*_args: object) -> ContainerIO:
    raise errors.BadRequest("no attach in this test")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, ContainerLog]]:
    log = ContainerLog(tmp_path / "c")
    log.start_run()
    log.write(b"first run\n")
    log.end_run()
    log.start_run()
    log.write(b"a\nb\nc\n")

    def lookup(namespace: str, pod: str, container: str) -> ContainerLog | None:
        if pod == "virtual":
            return None
        if pod != "p":
            raise errors.NotFound(f'pods "{pod}" not found')
        if container != "c":
            raise errors.BadRequest(f'container "{container}" in pod "p" is waiting to start: '
                                    "ContainerCreating")
        return log
    server = KubeletServer(lookup, no_exec, no_attach, token=TOKEN)
    port = await server.start()
    yield f"http://127.0.0.1:{port}/containerLogs/default", log
    await server.close()


@pytest.mark.parametrize(("path", "query", "status", "body"), [
    pytest.param("p/c", {}, 200, "a\nb\nc\n", id="current"),
    pytest.param("p/c", {"tailLines": "1"}, 200, "c\n", id="tail"),
    pytest.param("p/c", {"previous": "true"}, 200, "first run\n", id="previous"),
    pytest.param("p/c", {"limitBytes": "3"}, 200, "a\nb", id="limit"),
    pytest.param("virtual/c", {}, 200, "", id="virtual-pod-no-output"),
    pytest.param("q/c", {}, 404, 'pods \\"q\\" not found', id="unknown-pod"),
    pytest.param("p/d", {}, 400, "is waiting to start", id="waiting"),
    pytest.param("p/c", {"tailLines": "x"}, 400, "invalid tailLines", id="bad-number"),
])
async def test_log_requests(served: tuple[str, ContainerLog], path: str, query: dict[str, str],
                            status: int, body: str) -> None:
    base, _ = served
    async with aiohttp.ClientSession(headers=AUTH) as session, \
            session.get(f"{base}/{path}", params=query) as response:
        assert response.status == status
        assert body in await response.text()


async def test_previous_without_a_previous_run(tmp_path: Path) -> None:
    log = ContainerLog(tmp_path)
    log.start_run()
    server = KubeletServer(lambda *_: log, no_exec, no_attach, token=TOKEN)
    port = await server.start()
    try:
        async with aiohttp.ClientSession(headers=AUTH) as session, session.get(
                f"http://127.0.0.1:{port}/containerLogs/ns/p/c?previous=1") as response:
            assert response.status == 400
            assert "previous terminated container" in await response.text()
    finally:
        await server.close()


class UnreadableLog(ContainerLog):
    """A log whose files cannot be opened: the node agent is out of file descriptors."""

    def records(self, *, previous: bool = False) -> list[bytes]:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))


async def test_a_log_that_cannot_be_opened_is_a_status(tmp_path: Path) -> None:
    server = KubeletServer(lambda *_: UnreadableLog(tmp_path), no_exec, no_attach, token=TOKEN)
    port = await server.start()
    try:
        async with aiohttp.ClientSession(headers=AUTH) as session, session.get(
                f"http://127.0.0.1:{port}/containerLogs/ns/p/c") as response:
            assert response.status == 503
            status = await response.json()
    finally:
        await server.close()
    assert status["reason"] == "ServiceUnavailable" and status["code"] == 503
    assert status["message"] == ('cannot read the log of container "c" in pod "ns/p": Too many '
                                 "open files (the node agent's open-file limit is reached; see "
                                 "its log)")


async def test_follow_streams_until_the_run_ends(served: tuple[str, ContainerLog]) -> None:
    base, log = served
    async with aiohttp.ClientSession(headers=AUTH) as session, \
            session.get(f"{base}/p/c", params={"follow": "true", "tailLines": "1"}) as response:
        assert await response.content.readline() == b"c\n"
        log.write(b"d\n")
        assert await response.content.readline() == b"d\n"
        log.end_run()
        assert await asyncio.wait_for(response.content.read(), 5) == b""


@pytest.mark.parametrize(("query", "expected"), [
    pytest.param({}, None, id="none"),
    pytest.param({"sinceSeconds": "10"}, b"2026-01-01T00:00:50.000000000Z", id="seconds"),
    pytest.param({"sinceTime": "2026-01-01T00:00:30Z"}, b"2026-01-01T00:00:30.000000000Z",
                 id="time"),
])
def test_since_bound(query: dict[str, str], expected: bytes | None) -> None:
    now = datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.UTC)
    assert since_bound(query, now) == expected


# --- exec ----------------------------------------------------------------------------------


@pytest.fixture
async def exec_server(tmp_path: Path) -> AsyncIterator[str]:
    """A kubelet whose pod `p` container `c` runs commands as given, in `tmp_path`."""
    def lookup(namespace: str, pod: str, container: str,
               command: list[str]) -> tuple[list[str], dict[str, str], str | None]:
        if (pod, container) != ("p", "c"):
            raise errors.BadRequest(f'container "{container}" in pod "{pod}" is not running')
        return command, {"PATH": "/usr/bin:/bin", "GREETING": "hello"}, str(tmp_path)
    server = KubeletServer(lambda *_: None, lookup, no_attach, token=TOKEN)
    port = await server.start()
    yield f"http://127.0.0.1:{port}/exec/default"
    await server.close()


async def run_exec(url: str, command: list[str], *, stdin: bytes | None = None,
                   tty: bool = False, resize: tuple[int, int] | None = None, text: bool = False,
                   ) -> tuple[dict[int, bytes], dict[str, object]]:
    """One session as kubectl runs it: (bytes per stream, the final Status)."""
    params = [("command", c) for c in command] + [
        ("stdout", "true"), ("stderr", "false" if tty else "true"),
        ("stdin", "true" if stdin is not None else "false"), ("tty", "true" if tty else "false")]
    return await converse(url, params, stdin=stdin, resize=resize, text=text)


async def converse(url: str, params: list[tuple[str, str]], *, stdin: bytes | None,
                   resize: tuple[int, int] | None = None, text: bool = False,
                   ) -> tuple[dict[int, bytes], dict[str, object]]:
    """Send the window size and stdin (then close it, as v5 allows), collect every stream.
    With `text`, stdin goes as a TEXT message, as the official Python client sends a str."""
    streams: dict[int, bytes] = {}
    status: dict[str, object] = {}
    async with aiohttp.ClientSession(headers=AUTH) as session, session.ws_connect(
            url, params=params, protocols=remotecommand.PROTOCOLS) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        if resize is not None:
            await ws.send_bytes(remotecommand.frame(remotecommand.RESIZE, orjson.dumps(
                {"Width": resize[1], "Height": resize[0]})))
        if stdin is not None and text:
            await ws.send_str(chr(remotecommand.STDIN) + stdin.decode())
        elif stdin is not None:
            await ws.send_bytes(remotecommand.frame(remotecommand.STDIN, stdin))
        if stdin is not None:
            await ws.send_bytes(remotecommand.frame(remotecommand.CLOSE,
                                                    bytes((remotecommand.STDIN,))))
        async with asyncio.timeout(20):
            async for message in ws:
                stream, data = remotecommand.parse(message.data)
                if stream == remotecommand.ERROR:
                    status = orjson.loads(data)
                else:
                    streams[stream] = streams.get(stream, b"") + data
    return streams, status


EXEC_CASES = {
    "stdout and stderr apart": (
        ["sh", "-c", "echo out; echo err >&2"], {}, {1: b"out\n", 2: b"err\n"}, 0),
    "environment and working directory": (
        ["sh", "-c", 'echo "$GREETING"; test -d "$PWD" && echo in-dir'], {},
        {1: b"hello\nin-dir\n"}, 0),
    "exit code": (["sh", "-c", "exit 3"], {}, {}, 3),
    "stdin until closed": (["cat"], {"stdin": b"typed\n"}, {1: b"typed\n"}, 0),
    "stdin in a TEXT message": (["cat"], {"stdin": "typé\n".encode(), "text": True},
                                {1: "typé\n".encode()}, 0),
    "killed by a signal": (["sh", "-c", "kill -9 $$"], {}, {}, 137),
}


@pytest.mark.parametrize("case", EXEC_CASES, ids=list(EXEC_CASES))
async def test_exec_sessions(exec_server: str, case: str) -> None:
    command, extra, output, code = EXEC_CASES[case]
    streams, status = await run_exec(f"{exec_server}/p/c", command, **extra)  # type: ignore[arg-type]
    assert streams == output
    assert status == remotecommand.exit_status(code)


async def test_exec_with_a_terminal(exec_server: str) -> None:
    # The session waits for kubectl's first window size before it starts the command; what is
    # typed is echoed, as a terminal does.
    streams, status = await run_exec(f"{exec_server}/p/c",
                                     ["sh", "-c", "stty size; tty; read line; echo got-$line"],
                                     stdin=b"go\n", tty=True, resize=(33, 99))
    words = streams[remotecommand.STDOUT].decode().split()
    # The echo of "go" may come anywhere before the last line: it is typed at once.
    words.remove("go")
    assert words[:2] == ["33", "99"] and words[2].startswith("/dev/pts/")
    assert words[-1] == "got-go"
    assert status == remotecommand.exit_status(0)


async def test_a_container_that_cannot_exec_answers_on_the_error_stream(
        exec_server: str) -> None:
    streams, status = await run_exec(f"{exec_server}/p/other", ["true"])
    assert streams == {}
    assert status["reason"] == "BadRequest" and status["code"] == 400
    assert status["message"] == 'container "other" in pod "p" is not running'


def test_exec_with_a_terminal_under_uvloop(tmp_path: Path) -> None:
    """`tinykube up`'s node agents run on uvloop, whose child set-up differs from asyncio's."""
    async def session() -> tuple[dict[int, bytes], dict[str, object]]:
        server = KubeletServer(lambda *_: None, lambda *_: (["tty"], {}, str(tmp_path)),
                               no_attach, token=TOKEN)
        port = await server.start()
        try:
            return await run_exec(f"http://127.0.0.1:{port}/exec/ns/p/c", ["tty"], tty=True)
        finally:
            await server.close()
    streams, status = uvloop.run(session())
    assert streams[remotecommand.STDOUT].startswith(b"/dev/pts/")
    assert status == remotecommand.exit_status(0)


async def test_exec_of_a_missing_program_fails_with_a_status(exec_server: str) -> None:
    _streams, status = await run_exec(f"{exec_server}/p/c", ["no-such-program-here"])
    assert status["status"] == "Failure" and status["reason"] == "InternalError"
    assert "no-such-program-here" in str(status["message"])


async def test_a_client_that_leaves_ends_the_command(exec_server: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    params = [("command", "sh"), ("command", "-c"),
              ("command", f"echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; "
                          "echo started; exec sleep 60"),
              ("stdout", "true")]
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.ws_connect(f"{exec_server}/p/c", params=params,
                                      protocols=remotecommand.PROTOCOLS) as ws:
            message = await asyncio.wait_for(ws.receive(), 10)
            assert remotecommand.parse(message.data) == (remotecommand.STDOUT, b"started\n")
        pid = int(pid_file.read_text())  # the client has left: the command must go
        await until(lambda: not _alive(pid), "the command to be killed", 10)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
    except (OSError, IndexError):
        return False  # gone
    return "zombie" not in state


@pytest.mark.parametrize(("headers", "path", "status"), [
    pytest.param({}, "/exec/default/p/c?command=true", 401, id="no-token"),
    pytest.param({"Authorization": "Bearer wrong"}, "/exec/default/p/c?command=true", 401,
                 id="wrong-token"),
    pytest.param({}, "/containerLogs/default/p/c", 401, id="logs-need-it-too"),
    pytest.param({}, "/healthz", 200, id="health-is-open"),
    pytest.param(AUTH, "/exec/default/p/c", 400, id="no-command"),
])
async def test_requests_before_the_upgrade(exec_server: str, headers: dict[str, str], path: str,
                                           status: int) -> None:
    base = exec_server.removesuffix("/exec/default")
    async with aiohttp.ClientSession(headers=headers) as session, \
            session.get(base + path) as response:
        assert response.status == status


# --- attach --------------------------------------------------------------------------------


@pytest.fixture
async def attached(tmp_path: Path) -> AsyncIterator[tuple[str, ContainerIO, ContainerLog]]:
    """A kubelet whose pod `p` container `c` is a running `cat` with stdin and stdinOnce."""
    io = ContainerIO({"stdin": True, "stdinOnce": True})
    proc = await asyncio.create_subprocess_exec("cat", start_new_session=True,
                                                **io.spawn_options())
    io.started(proc)
    log = ContainerLog(tmp_path / "log")
    log.start_run()
    pump = asyncio.create_task(io.pump(log))

    def lookup(namespace: str, pod: str, container: str) -> ContainerIO:
        if (pod, container) != ("p", "c"):
            raise errors.BadRequest(f'container "{container}" in pod "{pod}" is not running')
        return io
    server = KubeletServer(lambda *_: None, no_exec, lookup, token=TOKEN)
    port = await server.start()
    yield f"http://127.0.0.1:{port}/attach/default", io, log
    await server.close()
    if proc.returncode is None:
        proc.kill()
    await proc.wait()
    await asyncio.wait_for(pump, 5)
    io.end()


async def attach(url: str, *, stdin: bytes | None) -> tuple[bytes, dict[str, object]]:
    params = [("stdout", "true"), ("stdin", "true" if stdin is not None else "false")]
    streams, status = await converse(url, params, stdin=stdin)
    return streams.get(remotecommand.STDOUT, b""), status


async def test_attach_replays_then_follows_and_stdin_once_ends_the_container(
        attached: tuple[str, ContainerIO, ContainerLog]) -> None:
    url, io, log = attached
    await io.write(b"before attach\n")
    await until(lambda: b"before attach" in b"".join(log.records()), "cat to echo", 10)
    output, status = await attach(f"{url}/p/c", stdin=b"typed\n")
    # stdinOnce: closing stdin ended `cat`, which ended the session with Success.
    assert output == b"before attach\ntyped\n"
    assert status == remotecommand.exit_status(0)
    assert io.proc is not None and await asyncio.wait_for(io.proc.wait(), 10) == 0


async def test_attach_to_a_container_that_is_not_running(
        attached: tuple[str, ContainerIO, ContainerLog]) -> None:
    url, _io, _log = attached
    output, status = await attach(f"{url}/p/other", stdin=None)
    assert output == b""
    assert status["message"] == 'container "other" in pod "p" is not running'
