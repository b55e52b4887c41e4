"""The code interpreter's sandbox: each kernel runs inside bubblewrap where one works here.

- layout.py: what a kernel sees inside (mounts, namespaces, environment) as bwrap's argv, and the kernel manager
  that starts a kernel in it; the two layouts (in a user namespace, or as root dropping to a uid of its own).
- detection.py: which bwrap runs that layout here (probed once per process), and the `--code-sandbox` policy.
- uids.py: the uid a root server's kernel drops to, one per session.
- processes.py: the cap on a kernel's processes and threads, and watching its tree against it.
- fonts.py: matplotlib's font list, built once and lent to every kernel read-only.
"""
