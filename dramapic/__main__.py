from .cli import program

if __name__ == "__main__":  # guarded: worker processes started with "spawn" import this module too
    program()
