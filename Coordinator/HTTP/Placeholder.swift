// The coordinator HTTP API (see CoordinatorServer).
