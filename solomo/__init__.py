"""SoLoMo: social-local-mobile check-ins, feeds, offers and moderation with real-time push."""

__version__ = "0.1.0"

# Before any module mypyc compiles can be imported: they run all compiled or all from source
# (solomo.core.compiled). The domain packages holding such modules import solomo first.
from solomo.core import compiled as _compiled

_compiled.guard()
