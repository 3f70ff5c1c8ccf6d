import unittest

from lib.greet import greet


class GreetTest(unittest.TestCase):
    def test_greet(self):
        self.assertEqual(greet("x"), "Hello, x!")


if __name__ == "__main__":
    unittest.main()
