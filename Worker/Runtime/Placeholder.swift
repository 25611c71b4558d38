// Worker runtime.
