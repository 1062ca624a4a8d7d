package main

import "fmt"

// version is the release string printed by 'finlora version' and in the kernel banner.
const version = "0.1.0-dev"

func init() {
	register("version", "print the version", func(args []string) error {
		fmt.Println("finlora", version)
		return nil
	})
}
