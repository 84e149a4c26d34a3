"""``python -m cymongoose.asgi``: same as the ``cymongoose-asgi`` command."""

from .main import main

raise SystemExit(main())
