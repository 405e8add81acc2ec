"""A UI's own static files beside the kit's (a page's script or stylesheet).

The kit mounts its own folder at `<prefix>/static`; a service adds its files with
`AppAssets(name, folder).router()` among its routers, and links them with `url(file)`,
which carries the content's hash, so a browser keeps a file until it changes. Only the
files present at start-up are served (no path from the URL ever reaches the disk), from
memory, under the same security headers as every page of the UI.
"""

import hashlib
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import Response

from shared.ui.kit import ui_not_found

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


class AppAssets:
    def __init__(self, name: str, directory: Path, prefix: str = "/ui") -> None:
        self.base = f"{prefix.rstrip('/')}/assets/{name}"
        self.files: dict[str, tuple[bytes, str, str]] = {}
        for path in sorted(directory.iterdir()):
            media_type = MEDIA_TYPES.get(path.suffix)
            if path.is_file() and media_type:
                content = path.read_bytes()
                digest = hashlib.sha256(content).hexdigest()[:10]
                self.files[path.name] = (content, media_type, digest)

    def url(self, filename: str) -> str:
        _, _, digest = self.files[filename]
        return f"{self.base}/{filename}?v={digest}"

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get(self.base + "/{filename}")
        async def asset(filename: str, v: str = "") -> Response:
            found = self.files.get(filename)
            if found is None:
                raise ui_not_found()
            content, media_type, digest = found
            # The hash in the URL names this content for ever; any other URL revalidates.
            cache = "public, max-age=31536000, immutable" if v == digest else "no-cache"
            return Response(
                content,
                media_type=media_type,
                headers={"Cache-Control": cache, "ETag": f'"{digest}"'},
            )

        return router
