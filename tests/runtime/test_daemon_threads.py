"""Daemon threads are stopped and joined when the process exits (runtime/daemon_threads.py)."""
import subprocess
import sys
import textwrap


def test_exit_stops_the_registered_objects_then_joins_every_daemon_thread(tmp_path):
    """The thread can only end after exit began (it waits for the stop), so the file proves the join."""
    done = tmp_path / "done"
    script = textwrap.dedent(f"""
        import threading
        from omnigraph.runtime.daemon_threads import start_daemon, stop_at_exit

        class Work:
            def __init__(self):
                self.stopped = threading.Event()

            def stop(self):
                self.stopped.set()

            def run(self):
                self.stopped.wait()
                with open({str(done)!r}, "w") as f:
                    f.write("joined")

        work = Work()
        stop_at_exit(work)
        start_daemon(work.run, "og-test")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert done.read_text() == "joined"

