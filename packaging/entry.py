"""PyInstaller entry point of the ``docfocus`` executable (same as the ``docfocus`` console script)."""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.main import main

    sys.exit(main())
