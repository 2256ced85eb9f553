"""The macOS Info.plist of Fovea.app, as data a test can read (build.spec passes it to BUNDLE)."""

from __future__ import annotations

from typing import Any

# MLX >= 0.30 runs on macOS 14+ only, and the build installs the mlx-metal wheel made for 14.0
# (scripts/build_app.sh); `python -m buildkit.macho` fails the build if any binary needs more.
MIN_MACOS = "14.0"

_WHY = "Fovea reads the photos in the folders you add to a library, to index and search them on this Mac."
USAGE_DESCRIPTIONS = {
    "NSDesktopFolderUsageDescription": _WHY,
    "NSDocumentsFolderUsageDescription": _WHY,
    "NSDownloadsFolderUsageDescription": _WHY,
    "NSRemovableVolumesUsageDescription": _WHY + " That includes libraries on external drives.",
    "NSNetworkVolumesUsageDescription": _WHY + " That includes libraries on network volumes.",
}


def info_plist(version: str, year: int = 2026) -> dict[str, Any]:
    """Everything Fovea.app's Info.plist sets beyond what PyInstaller writes itself."""
    return {
        "CFBundleName": "Fovea",
        "CFBundleDisplayName": "Fovea",
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "NSPrincipalClass": "NSApplication",  # without it AppKit treats the app as not high-DPI aware
        "NSHighResolutionCapable": True,
        "NSRequiresAquaSystemAppearance": False,  # follow the system's dark mode
        "LSMinimumSystemVersion": MIN_MACOS,
        "LSApplicationCategoryType": "public.app-category.photography",
        "NSHumanReadableCopyright": f"Copyright © {year} the Fovea authors. MIT licence.",
        **USAGE_DESCRIPTIONS,
        # Folders dropped on the Dock icon (or "Open With") arrive as QFileOpenEvent.
        "CFBundleDocumentTypes": [
            {
                "CFBundleTypeName": "Folder",
                "CFBundleTypeRole": "Viewer",
                "LSHandlerRank": "Alternate",
                "LSItemContentTypes": ["public.folder"],
            }
        ],
    }
