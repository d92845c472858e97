print("datagen: not yet")
