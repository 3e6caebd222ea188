"""Lightning tasks implementing the SMARTIES evaluation protocols on top of TerraTorch."""
