package main

const libName = "etcd36"
