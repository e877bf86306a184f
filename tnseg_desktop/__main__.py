from tnseg_desktop.cli import main

raise SystemExit(main())
