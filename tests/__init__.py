"""The end-to-end tests (real server, real browser) and the cross-app ones.

A package, so its conftest.py is `tests.conftest` beside the root conftest.py (both plain `conftest`
would replace each other in sys.modules) and its helpers are imported as `tests.live_server`,
`tests.browsing`.
"""
