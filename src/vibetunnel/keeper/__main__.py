import sys

# The keeper never speaks TLS, and asyncio imports `ssl` only if it can: kept out, the
# keeper starts some 25 ms sooner (it starts with the first session) and holds 4 MB less,
# libssl and libcrypto.
sys.modules["ssl"] = None  # type: ignore[assignment]

from vibetunnel.keeper.daemon import main  # noqa: E402

sys.exit(main())
