// The engine's public API is stated in CoordinatorAPI's types (it implements
// `CoordinatorService`, returns `RunView`s, takes `SubmitRequest`s), so code
// that imports the engine gets them with it, as the engine's own files do.
@_exported import CoordinatorAPI
