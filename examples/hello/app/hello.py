from lib.greet import greet

if __name__ == "__main__":
    print(greet("forge"))
