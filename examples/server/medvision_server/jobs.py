"""Jobs that lose nothing: a job table (queued -> running -> succeeded | failed) with attempts,
a lease that the running worker renews (a crashed worker's job is taken again when its lease
expires), exponential back-off for transient errors and none for permanent ones. Jobs run on a
thread pool in the server (ThreadExecutor) or on a Dask cluster (DaskExecutor): the same
interface, run(spec) -> result."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import medvision
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import sessionmaker

from .analysis import ModelCache, analyse, analyse_on_dask_worker
from .db import Job, ModelResult, Study
from .metrics import Metrics
from .settings import Settings
from .store import FileStore

log = logging.getLogger("medvision_server.jobs")

#: Bad input or a bad model: retrying cannot help, the job fails at once.
PERMANENT = (medvision.FileFormatError, medvision.InvalidArgumentError,
             medvision.ShapeMismatchError, medvision.MedvisionOutOfMemoryError,
             medvision.MedvisionNotImplementedError, medvision.ModelError,
             medvision.CancelledError, FileNotFoundError, ValueError, KeyError)


def is_permanent(e: BaseException) -> bool:
    return isinstance(e, PERMANENT)


class JobQueue:
    """The job table's transitions. Every transition is a conditional UPDATE (compare and
    set), so two workers or two servers on one database never both take a job."""

    def __init__(self, sessions: sessionmaker, settings: Settings):
        self.sessions, self.s = sessions, settings

    def depth(self) -> int:
        with self.sessions() as db:
            return int(db.execute(select(func.count(Job.id))
                                  .where(Job.state.in_(("queued", "running")))).scalar_one())

    def claim(self, worker: str) -> Optional[Tuple[str, str, int]]:
        """Takes the oldest runnable job: queued and due, or running with an expired lease.
        Returns (job_id, study_id, attempt) or None."""
        now = time.time()
        with self.sessions() as db:
            cands = db.execute(
                select(Job.id, Job.state, Job.attempts, Job.max_attempts, Job.lease_until)
                .where(or_(and_(Job.state == "queued", Job.next_run_at <= now),
                           and_(Job.state == "running", Job.lease_until < now)))
                .order_by(Job.created_at).limit(8)).all()
            for jid, state, attempts, max_attempts, lease in cands:
                stale = and_(Job.id == jid, Job.state == state, Job.attempts == attempts)
                if state == "running" and attempts >= max_attempts:
                    db.execute(update(Job).where(stale).values(
                        state="failed", finished_at=now, lease_until=None,
                        error=f"the worker running it stopped (lease expired) on each of "
                              f"{attempts} attempts"))
                    db.commit()
                    continue
                res = db.execute(update(Job).where(stale).values(
                    state="running", attempts=attempts + 1, worker=worker,
                    lease_until=now + self.s.lease_s, started_at=now, progress=0.0))
                db.commit()
                if res.rowcount == 1:
                    sid = db.execute(select(Job.study_id).where(Job.id == jid)).scalar_one()
                    return jid, sid, attempts + 1
        return None

    def renew(self, job_ids: List[str], worker: str) -> None:
        if not job_ids:
            return
        with self.sessions() as db:
            db.execute(update(Job).where(Job.id.in_(job_ids), Job.worker == worker,
                                         Job.state == "running")
                       .values(lease_until=time.time() + self.s.lease_s))
            db.commit()

    def set_progress(self, job_id: str, worker: str, p: float) -> None:
        with self.sessions() as db:
            db.execute(update(Job).where(Job.id == job_id, Job.worker == worker,
                                         Job.state == "running").values(progress=p))
            db.commit()

    def succeed(self, job_id: str, worker: str, study_id: str, out: Dict[str, Any]) -> bool:
        with self.sessions() as db:
            res = db.execute(update(Job).where(Job.id == job_id, Job.worker == worker,
                                               Job.state == "running")
                             .values(state="succeeded", progress=1.0, finished_at=time.time(),
                                     lease_until=None, error=None))
            if res.rowcount != 1:  # the lease was lost and another worker took the job
                db.rollback()
                return False
            db.query(ModelResult).filter(ModelResult.study_id == study_id).delete()
            for r in out["results"]:
                art = dict(r["artefacts"])
                art["image"] = out["image"]
                db.add(ModelResult(study_id=study_id, model=r["model"], version=r["version"],
                                   notice=r["notice"], task=r["task"], result=r["result"],
                                   artefacts=art, licence=r.get("licence", ""),
                                   seconds=float(r.get("seconds", 0.0))))
            db.commit()
            return True

    def fail(self, job_id: str, worker: str, attempt: int, error: str, transient: bool) -> str:
        """Back to the queue with back-off (transient, attempts left) or failed. Returns the
        new state."""
        now = time.time()
        with self.sessions() as db:
            job = db.get(Job, job_id)
            retry = transient and job is not None and attempt < job.max_attempts
            values: Dict[str, Any] = {"error": error[:2000], "lease_until": None}
            if retry:
                values.update(state="queued",
                              next_run_at=now + self.s.backoff_s * 2 ** (attempt - 1))
            else:
                values.update(state="failed", finished_at=now)
            db.execute(update(Job).where(Job.id == job_id, Job.worker == worker,
                                         Job.state == "running").values(**values))
            db.commit()
            return values["state"]


class ThreadExecutor:
    """Runs the analysis in the calling worker thread; the models are this process's."""

    def __init__(self, models: ModelCache):
        self.models = models
        self.name = "threads"

    def run(self, spec: Dict[str, Any], progress: Callable[[float], None]) -> Dict[str, Any]:
        return analyse(spec, self.models, progress)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Submits the analysis to a Dask cluster; each Dask worker keeps its own warm models.
    The workers read the store and write the results under --data, so they share its file
    system (one machine, or a shared mount)."""

    def __init__(self, address: str, model_threads: int):
        from distributed import Client

        self.client = Client(address, set_as_default=False, timeout=30)
        self.model_threads = model_threads
        self.name = f"dask {address}"

    def run(self, spec: Dict[str, Any], progress: Callable[[float], None]) -> Dict[str, Any]:
        fut = self.client.submit(analyse_on_dask_worker, spec, self.model_threads, pure=False)
        return fut.result()

    def close(self) -> None:
        self.client.close()


class JobRunner:
    """``workers`` threads that claim jobs and run them on the executor, and one thread that
    renews the leases of the jobs in hand."""

    def __init__(self, queue: JobQueue, store: FileStore, executor: Any, settings: Settings,
                 metrics: Metrics):
        self.queue, self.store, self.executor, self.s, self.metrics = \
            queue, store, executor, settings, metrics
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._held: Set[str] = set()
        self._held_lock = threading.Lock()
        self._threads: List[threading.Thread] = []

    @property
    def executor_name(self) -> str:
        return str(self.executor.name)

    def start(self) -> None:
        for i in range(max(1, self.s.workers)):
            t = threading.Thread(target=self._loop, name=f"medvision-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._heartbeat, name="medvision-lease", daemon=True)
        t.start()
        self._threads.append(t)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self.executor.close()

    def _heartbeat(self) -> None:
        while not self._stop.wait(max(self.s.lease_s / 3.0, 0.2)):
            with self._held_lock:
                held = list(self._held)
            try:
                self.queue.renew(held, self.worker_id)
            except Exception:  # the database may be briefly unavailable; try again soon
                log.exception("lease renewal failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self.queue.claim(self.worker_id)
            except Exception:
                log.exception("claiming a job failed")
                claimed = None
            if claimed is None:
                self._wake.wait(self.s.poll_s)
                self._wake.clear()
                continue
            self.run_one(*claimed)

    def spec_of(self, study_id: str) -> Dict[str, Any]:
        with self.queue.sessions() as db:
            st = db.get(Study, study_id)
            if st is None:
                raise KeyError(f"study {study_id} is gone")
            return {"paths": [str(self.store.path_of(f["sha256"])) for f in st.files],
                    "kind": st.kind, "models": list(st.models), "explain": bool(st.explain),
                    "out_dir": str(self.store.results_of(study_id)),
                    "max_values": self.s.max_image_values, "batch_size": self.s.batch_size}

    def run_one(self, job_id: str, study_id: str, attempt: int) -> None:
        with self._held_lock:
            self._held.add(job_id)
        t0 = time.perf_counter()
        try:
            spec = self.spec_of(study_id)
            out = self.executor.run(
                spec, lambda p: self.queue.set_progress(job_id, self.worker_id, p))
            if self.queue.succeed(job_id, self.worker_id, study_id, out):
                for r in out["results"]:
                    self.metrics.inference.labels(r["model"]).observe(r["seconds"])
                self.metrics.jobs.labels("succeeded").observe(time.perf_counter() - t0)
        except Exception as e:
            permanent = is_permanent(e)
            msg = f"{type(e).__name__}: {e}".replace(str(self.s.data_dir), "<data>")
            state = self.queue.fail(job_id, self.worker_id, attempt, msg, not permanent)
            log.warning("job %s attempt %d: %s (%s)", job_id, attempt, msg,
                        "retry later" if state == "queued" else "failed")
            if state == "failed":
                self.metrics.jobs.labels("failed").observe(time.perf_counter() - t0)
        finally:
            with self._held_lock:
                self._held.discard(job_id)
