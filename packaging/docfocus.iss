; Inno Setup script for the Windows installer of DocFocus. UNTESTED: no Windows machine was available.
; 1. On Windows, build the bundle:  python packaging\build.py   (gives dist\DocFocus\docfocus.exe)
; 2. Compile this script with Inno Setup 6:  iscc packaging\docfocus.iss
;    -> dist\DocFocus-<version>-windows-setup.exe (per-user install, no administrator rights needed)
#define AppName "DocFocus"
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
; docfocusw.exe opens the window without a console; docfocus.exe is the command line (ask, --self-test).
#define AppExe "docfocusw.exe"

[Setup]
AppId={{6F0C9B2E-5D43-4B8A-9C1E-D0CF0C05D0C5}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=DocFocus developers
DefaultDirName={localappdata}\Programs\{#AppName}
DefaultGroupName={#AppName}
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\dist
OutputBaseFilename=DocFocus-{#AppVersion}-windows-setup
SetupIconFile=..\resources\docfocus.ico
UninstallDisplayIcon={app}\{#AppExe}
LicenseFile=..\LICENSE
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "..\dist\DocFocus\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
; "Open with DocFocus" for PDF files (per user).
Root: HKCU; Subkey: "Software\Classes\Applications\{#AppExe}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\.pdf\OpenWithList\{#AppExe}"; ValueType: string; ValueName: ""; ValueData: ""; Flags: uninsdeletekey

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
