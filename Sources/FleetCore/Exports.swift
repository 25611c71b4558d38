// Why FleetCore re-exports FleetWire: until issue 11 the wire messages lived
// here, and the stage operators, the worker runtime, the engine, the
// benchmarks and their tests use both (a spec, and the stages, chunk
// references and task messages it turns into) under one `import FleetCore`.
// Several branches were changing those files while the wire moved out, so
// the re-export spares each of them an import edit and its merge conflict.
// The dependency direction is what matters and is enforced by the package:
// FleetWire depends on nothing but swift-crypto (the messages' MACs), and the targets that need only the wire
// (FleetAMQP, CoordinatorAPI, CoordinatorHTTP) import FleetWire and do not
// depend on FleetCore, Columnar or Yams.
@_exported import FleetWire
