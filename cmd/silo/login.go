package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/api/client"
	"github.com/silo-containers/silo/internal/storage/auth"
)

// loginCommands are login and logout. Credentials are checked against
// the registry by silo itself and kept in the credential file (see
// internal/storage/auth); pull and push send them to silod with each
// request.
func loginCommands() []*cobra.Command {
	return []*cobra.Command{loginCommand(), logoutCommand()}
}

func loginCommand() *cobra.Command {
	var username, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry (credentials kept in ~/.config/silo/config.json)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := serverArg(args)
			if password != "" && passwordStdin {
				return errors.New("--password and --password-stdin are mutually exclusive")
			}
			if password != "" {
				fmt.Fprintln(os.Stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			}
			in := bufio.NewReader(os.Stdin)
			var err error
			if passwordStdin {
				if username == "" {
					return errors.New("must provide --username with --password-stdin")
				}
				if password, err = readPasswordStdin(in); err != nil {
					return err
				}
			}
			if username == "" {
				if username, err = prompt(in, "Username: "); err != nil {
					return err
				}
			}
			if password == "" {
				if password, err = promptPassword(in, "Password: "); err != nil {
					return err
				}
			}
			f, err := auth.LoadDefault()
			if err != nil {
				return err
			}
			c := auth.Credentials{Username: username, Password: password}
			if err := auth.Check(cmd.Context(), server, c, nil); err != nil {
				return err
			}
			f.Set(server, c)
			if err := f.Save(); err != nil {
				return err
			}
			fmt.Printf("Login Succeeded (credentials kept in %s)\n", f.Path())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&username, "username", "u", "", "username")
	fl.StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	fl.BoolVar(&passwordStdin, "password-stdin", false, "take the password from stdin")
	return cmd
}

func logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry (forget its credentials)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := serverArg(args)
			f, err := auth.LoadDefault()
			if err != nil {
				return err
			}
			if !f.Delete(server) {
				fmt.Printf("Not logged in to %s\n", auth.Host(server))
				return nil
			}
			if err := f.Save(); err != nil {
				return err
			}
			fmt.Printf("Removing login credentials for %s\n", auth.Host(server))
			return nil
		},
	}
}

// registryAuth is the X-Registry-Auth value for ref's registry from the
// credential file; empty (anonymous) when there are none.
func registryAuth(ref string) (string, error) {
	reg, err := auth.RegistryOf(ref)
	if err != nil {
		return "", err
	}
	f, err := auth.LoadDefault()
	if err != nil {
		return "", err
	}
	c, ok := f.Get(reg)
	if !ok {
		return "", nil
	}
	return client.EncodeAuth(c.Username, c.Password, reg)
}

// readPasswordStdin reads the password from stdin up to the first line
// end, as docker does.
func readPasswordStdin(in *bufio.Reader) (string, error) {
	b, err := io.ReadAll(in)
	if err != nil {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", errors.New("password from stdin is empty")
	}
	return p, nil
}

func prompt(in *bufio.Reader, label string) (string, error) {
	fmt.Fprint(os.Stderr, label)
	line, err := in.ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read %s: %w", strings.TrimSuffix(strings.ToLower(label), ": "), err)
	}
	v := strings.TrimSpace(line)
	if v == "" {
		return "", fmt.Errorf("%s is required", strings.TrimSuffix(strings.ToLower(label), ": "))
	}
	return v, nil
}

// promptPassword reads a line with the terminal's echo off.
func promptPassword(in *bufio.Reader, label string) (string, error) {
	fd := int(os.Stdin.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return prompt(in, label) // not a terminal: nothing is shown anyway
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return "", fmt.Errorf("turn off terminal echo: %w", err)
	}
	defer func() {
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
		fmt.Fprintln(os.Stderr)
	}()
	return prompt(in, label)
}

// serverArg is the registry login and logout name: their argument, or
// Docker Hub.
func serverArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return "docker.io"
}
