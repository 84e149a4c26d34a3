"""cymongoose.wsgi: a PEP 3333 WSGI server on the mongoose C event loop.

from cymongoose.wsgi import serve
serve(app, "http://127.0.0.1:8000", workers=8)
"""

from .environ import FileWrapper
from .server import WSGIServer, serve

__all__ = ["FileWrapper", "WSGIServer", "serve", "__version__"]
__version__ = "0.1.0"
