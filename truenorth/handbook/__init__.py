"""The handbook: the Markdown files in the repository's `docs/` rendered inside the app at `/docs/`,
so sites without internet access have the product documentation too."""
