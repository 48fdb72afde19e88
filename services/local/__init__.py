"""The local hybrid cloud: the plan of processes, the supervisor, zone namespaces, the
database, and `isthmus up/demo/down`."""
