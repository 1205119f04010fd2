"""A local Spark standalone cluster (master, worker) with a Thrift server, for the distributed path."""
