"""Exceptions and warnings raised by tfxai, each carrying an actionable message.

Every exception tfxai raises on purpose is a :class:`TfxaiError` and also the
built-in exception Python code would expect (``ValueError`` for a bad value,
``TypeError`` for an argument of the wrong kind or a parameter a function
does not take, ``KeyError`` for an unknown name), so both
``except tfxai.TfxaiError`` and ``except ValueError`` catch it.
"""

import difflib


class TfxaiError(Exception):
    """Base class of every error tfxai raises on purpose."""


class ModelError(TfxaiError, ValueError):
    """The model cannot be explained as given (subclassed, unbuilt, wrong backend)."""


class UnsupportedLayerError(ModelError):
    """Some nodes of the model have no relevance rule.

    Attributes
    ----------
    nodes : list of tuple
        ``(node name, layer class name)`` for every unsupported node.
    """

    def __init__(self, message, nodes):
        super().__init__(message)
        self.nodes = list(nodes)


class InputError(TfxaiError, ValueError):
    """The data passed to ``analyze`` does not fit the model."""


class ModelLoadError(TfxaiError, ValueError):
    """A model file or ``keras.applications`` name that cannot be loaded."""


class ParameterError(TfxaiError, ValueError):
    """A parameter with a value outside what it accepts (``epsilon=-1``, ``steps=1``)."""


class ParameterTypeError(TfxaiError, TypeError):
    """An argument of the wrong kind, or a parameter the function does not take."""


class UnknownNameError(TfxaiError, KeyError):
    """A name (of an analyzer, a composite) that is not registered.

    The message lists the closest registered names (see :func:`suggest`).
    """

    def __str__(self):
        return str(self.args[0])  # KeyError would show the message in quotes


class TfxaiWarning(UserWarning):
    """Base class of the warnings tfxai emits."""


class EmptyMapWarning(TfxaiWarning):
    """An explanation is exactly zero for some samples (e.g. Grad-CAM without positive evidence)."""


def suggest(name, names, what: str) -> str:
    """``"Unknown <what> 'x'. Did you mean: ...? Valid names: ..."`` for an unknown ``name``."""
    close = difflib.get_close_matches(str(name), list(names), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"Unknown {what} {name!r}.{hint} Valid names: {', '.join(names)}"
