"""A real Orthanc and a real medvision-node, started by the tests on loopback ports picked free,
each with its own temporary config and storage."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.25):
    """Polls `predicate` until it returns something truthy; fails naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Orthanc:
    """Orthanc (Debian's /usr/sbin/Orthanc) with a temporary config: HTTP and DICOM on free
    ports, HTTP answering loopback only, storage in `folder`, the node declared as modality
    "node"."""

    AET = "ORTHANC"

    def __init__(self, folder: Path, node_aet: str, node_port: int):
        self.folder = folder
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.config = folder / "orthanc.json"
        self.config.write_text(json.dumps({
            "Name": "medvision-node-test",
            "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.AET,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpServerEnabled": True,
            "DicomServerEnabled": True,
            "Plugins": [],
            "DicomScuTimeout": 30,
            "DicomModalities": {"node": [node_aet, "127.0.0.1", node_port]},
        }))
        self.proc = None
        self.log = open(folder / "orthanc.log", "ab")

    def start(self):
        self.proc = subprocess.Popen(["/usr/sbin/Orthanc", str(self.config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._up, 60, "Orthanc's REST API")

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"Orthanc exited with {self.proc.returncode}; see "
                                 f"{self.folder / 'orthanc.log'}")
        try:
            return self.get("/system")
        except (urllib.error.URLError, ConnectionError):
            return None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def _request(self, method, path, body=None, raw=False):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data,
                                     method=method)
        with urllib.request.urlopen(req, timeout=120) as r:
            payload = r.read()
        return payload if raw else json.loads(payload)

    def get(self, path, raw=False):
        return self._request("GET", path, raw=raw)

    def post(self, path, body):
        return self._request("POST", path, body)

    def study_id(self, study_uid):
        found = self.post("/tools/find", {"Level": "Study",
                                          "Query": {"StudyInstanceUID": study_uid}})
        return found[0] if found else None

    def instances(self, study_uid):
        """[(orthanc id, SOPClassUID, Modality)] of a study's instances."""
        sid = self.study_id(study_uid)
        if sid is None:
            return []
        out = []
        for inst in self.get(f"/studies/{sid}/instances"):
            tags = self.get(f"/instances/{inst['ID']}/simplified-tags")
            out.append((inst["ID"], tags.get("SOPClassUID"), tags.get("Modality")))
        return out

    def file(self, instance_id):
        return self.get(f"/instances/{instance_id}/file", raw=True)

    def send_to_node(self, study_uid):
        sid = self.study_id(study_uid)
        assert sid, f"study {study_uid} not in Orthanc"
        return self.post("/modalities/node/store", {"Resources": [sid], "Synchronous": True})


class Node:
    """medvision-node with a config in `folder` (data_dir there too); its log in node.log."""

    AET = "MEDVISION"

    def __init__(self, binary: Path, folder: Path, port: int, destination: dict, **extra):
        self.binary = binary
        self.folder = folder
        self.port = port
        self.data_dir = folder / "data"
        self.config = folder / "node.json"
        cfg = {"ae_title": self.AET, "port": port, "data_dir": str(self.data_dir),
               "accept_from": [Orthanc.AET], "destination": destination,
               "idle_seconds": 2, "workers": 1, "threads": 2}
        cfg.update(extra)
        self.config.write_text(json.dumps(cfg, indent=1))
        self.log_path = folder / "node.log"
        self.proc = None

    def start(self):
        env = dict(os.environ)
        self.proc = subprocess.Popen([str(self.binary), "--config", str(self.config)],
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     env=env)
        wait_for(self._listening, 60, "medvision-node to listen")

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"medvision-node exited with {self.proc.returncode}:\n"
                                 + self.log())
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = None if self.proc is None else self.proc.returncode
        self.proc = None
        return rc

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def status(self):
        return subprocess.run([str(self.binary), "status", "--config", str(self.config)],
                              capture_output=True, text=True, timeout=60, check=True).stdout

    def jobs(self):
        p = self.data_dir / "jobs.jsonl"
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    def study_state(self, study_uid):
        p = self.data_dir / "studies" / study_uid / "state.json"
        try:
            return json.loads(p.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
