"""The interactive viewer: its data prepared once per run (`data`, `thumbs`), served or exported (`app`).

The TypeScript source is in the repository's viewer/ folder; its build is committed in `static/`.
"""
