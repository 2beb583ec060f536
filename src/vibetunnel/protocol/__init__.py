"""The wire protocol, pure: bytes and text in, frames and typed messages out. No I/O."""
