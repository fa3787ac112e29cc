package main

const libName = "etcd37"
