"""The tools a run can use, plug-ins of one protocol (base.py, `Tool`): functions (the client runs them,
functions.py), the code interpreter (a Jupyter kernel per thread, in bubblewrap: the code_interpreter/ package),
file search (the run's vector stores, file_search.py), and how call arguments follow the user's request
(arguments.py). The engine registers them in engine/engine.py and drives a call in engine/tooling.py."""
