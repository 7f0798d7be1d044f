from .cli import main

if __name__ == "__main__":  # the engine core is spawned: entry points need the guard
    main()
