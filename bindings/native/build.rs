fn main() {
    // Sets the linker flags node addons need (notably on macOS: undefined
    // symbols resolved at load time). A no-op on Linux, kept for portability.
    napi_build::setup();
}
