"""opsbot: runbooks turned into executable, audited Slack workflows."""

import warnings
from importlib.metadata import PackageNotFoundError, version

# cryptography 51 deprecates DSA and asyncssh touches its DSA types when imported, which would put
# five warnings on the stderr of every command (the CLI promises one line per problem). The warning
# is about a key type (asyncssh's defaults no longer offer ssh-dss), not about anything we call.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh(\.|$)")

try:
    __version__ = version("opsbot")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
