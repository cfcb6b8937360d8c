from bouncehouse.cli import main

raise SystemExit(main())
